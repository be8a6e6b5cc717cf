"""tsc_toolkit/sagemaker/ is laid out by where code runs, and its imports say so.

client (sagemaker/*.py) -> shared; container/ -> shared; local/ -> container, shared (and the
client's public modules); shared/ -> nothing in sagemaker/. No import circle anywhere in it.
The imports are read from the source (those inside functions too), so a lazy import cannot
hide a forbidden edge.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tsc_toolkit" / "sagemaker"
ROOT = "tsc_toolkit.sagemaker"
# The training entry point keeps its public name in the client folder; it is only a pointer
# to container/train.py.
ENTRY_ALIAS = f"{ROOT}.train"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parents[1]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of the tsc_toolkit.sagemaker modules that ``path`` imports."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            module = _resolve(t)
            if module is not None and module != name:
                found.add(module)
    return found


def _resolve(target: str) -> str | None:
    """The sagemaker module a dotted import target names (or None outside sagemaker/)."""
    if not target.startswith(ROOT):
        return None
    parts = target.split(".")
    while parts:
        rel = Path(*parts[2:]) if len(parts) > 2 else Path()
        if (PACKAGE / rel).with_suffix(".py").is_file() and len(parts) > 2:
            return ".".join(parts)
        if (PACKAGE / rel / "__init__.py").is_file():
            return ".".join(parts)
        parts = parts[:-1]
    return None


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _place(module: str) -> str:
    rest = module[len(ROOT):].lstrip(".")
    head = rest.split(".", 1)[0]
    if head in ("container", "local", "shared"):
        return head
    return "package" if not rest else "client"


ALLOWED = {
    "shared": {"shared"},
    "container": {"container", "shared"},
    "client": {"client", "shared"},
    "local": {"local", "container", "shared", "client"},
    "package": {"package"},
}


def test_the_reader_of_the_source_sees_every_module():
    graph = _graph()
    assert {"tsc_toolkit.sagemaker.training_job", "tsc_toolkit.sagemaker.container.kmeans",
            "tsc_toolkit.sagemaker.local.offline", "tsc_toolkit.sagemaker.shared.recordio"} \
        <= set(graph)
    # the reader finds lazy imports too: offline's serving hook and a container's core import
    assert "tsc_toolkit.sagemaker.local.serving" in graph["tsc_toolkit.sagemaker.local.offline"]
    assert "tsc_toolkit.sagemaker.container.inference" in \
        graph["tsc_toolkit.sagemaker.container.kmeans"]


def test_each_place_imports_only_what_it_may():
    wrong = []
    for module, targets in _graph().items():
        if module == ENTRY_ALIAS:
            assert targets <= {f"{ROOT}.container", f"{ROOT}.container.train"}, targets
            continue
        for target in targets:
            if _place(target) not in ALLOWED[_place(module)] | {"package"}:
                wrong.append(f"{module} -> {target}")
    assert not wrong, wrong


def test_no_import_circle():
    graph = _graph()
    # a package's __init__ is reached by importing anything below it; leave those edges out
    edges = {m: {t for t in ts if t in graph and not m.startswith(t + ".")}
             for m, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                pytest.fail("import circle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_importing_the_client_loads_neither_the_emulation_nor_the_container():
    code = (
        "import sys\n"
        "import tsc_toolkit.sagemaker.training_job, tsc_toolkit.sagemaker.deploy\n"
        "import tsc_toolkit.sagemaker.builtin_kmeans\n"
        "from tsc_toolkit.sagemaker import KMeans, KMeansModel, fit, deploy\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('tsc_toolkit.sagemaker.local',"
        " 'tsc_toolkit.sagemaker.container')))\n"
        "print(bad)\n"
        "assert not bad, bad\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_public_names_and_the_entry_point_still_work():
    code = (
        "import tsc_toolkit.sagemaker as sm\n"
        "from tsc_toolkit.sagemaker.local.offline import offline_aws\n"
        "assert sm.offline_aws is offline_aws\n"
        "assert callable(sm.fit) and callable(sm.deploy) and isinstance(sm.KMeans, type)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    # the training entry point under its public name: a bad argument fails with its message
    run = subprocess.run([sys.executable, "-m", "tsc_toolkit.sagemaker.train", "stray"],
                         capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "SM_OUTPUT_FAILURE": "/dev/null",
                              "PYTHONPATH": str(PACKAGE.parents[1])})
    assert run.returncode == 1 and "Expected --name value arguments" in run.stderr, run.stderr
