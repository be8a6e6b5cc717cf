"""The lazy names of ``tsc_toolkit.sagemaker`` resolve the same whatever was imported first."""

import subprocess
import sys

import pytest

SCRIPTS = {
    "deploy first": "from tsc_toolkit.sagemaker import deploy\n",
    "KMeans first": "from tsc_toolkit.sagemaker import KMeans\nfrom tsc_toolkit.sagemaker import deploy\n",
    "submodule first": "import tsc_toolkit.sagemaker.deploy\nfrom tsc_toolkit.sagemaker import deploy\n",
}


@pytest.mark.parametrize("order", sorted(SCRIPTS))
def test_deploy_is_callable_whatever_was_imported_first(order):
    # a fresh interpreter per order: what was imported before is the point of the test
    code = SCRIPTS[order] + (
        "import inspect, tsc_toolkit.sagemaker as sm\n"
        "from tsc_toolkit.sagemaker.deploy import deploy as function\n"
        "assert callable(deploy) and deploy is sm.deploy, deploy\n"
        "assert sm.deploy.deploy is function\n"
        "try:\n"
        "    deploy(object(), role='arn:aws:iam::123456789012:role/x', boto_session=None)\n"
        "except TypeError as exc:\n"
        "    assert 'not callable' not in str(exc), exc\n"
        "except Exception:\n"
        "    pass\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_every_lazy_name_resolves():
    import tsc_toolkit.sagemaker as sm

    for name in sm.__all__:
        assert getattr(sm, name) is not None, name
