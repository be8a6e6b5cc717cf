"""environment.yml (for conda users and SageMaker Studio) must agree with pyproject.toml."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's
CONDA_NAMES = {"torch": "pytorch"}


def _split(spec: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", spec)
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["notebooks"]
    out = {}
    for spec in specs:
        name, version = _split(spec)
        out[CONDA_NAMES.get(name, name)] = version
    return out


def _environment() -> tuple[dict[str, str], list[str], str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip.extend(dep["pip"])
            continue
        name, version = _split(dep.replace("=", "==", 1) if re.match(r"^[\w\-]+=[^=<>]", dep)
                               else dep)
        conda[name] = version
    return conda, pip, env["channels"]


def test_environment_uses_conda_forge_python_312_pip_and_ipykernel():
    conda, _, channels = _environment()
    assert channels == ["conda-forge"]
    assert conda["python"] == "==3.12"
    assert "pip" in conda and "ipykernel" in conda


def test_environment_installs_this_package_with_its_notebook_extras():
    _, pip, _ = _environment()
    assert any(re.search(r"\.\[[^\]]*notebooks[^\]]*\]", p) for p in pip), pip


def test_every_dependency_appears_on_both_sides_with_the_same_lower_bound():
    required = _pyproject_requirements()
    conda, _, _ = _environment()
    conda = {k: v for k, v in conda.items() if k not in ("python", "pip")}
    missing_in_env = sorted(set(required) - set(conda))
    missing_in_pyproject = sorted(set(conda) - set(required))
    assert not missing_in_env, f"in pyproject.toml but not environment.yml: {missing_in_env}"
    assert not missing_in_pyproject, \
        f"in environment.yml but not pyproject.toml: {missing_in_pyproject}"
    differ = {k: (required[k], conda[k]) for k in required if required[k] != conda[k]}
    assert not differ, f"version bounds differ (pyproject, environment.yml): {differ}"


def test_python_312_is_allowed_by_requires_python():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    low = re.match(r">=\s*3\.(\d+)", project["requires-python"]).group(1)
    assert int(low) <= 12
