"""The GitHub Actions workflows that run the platform tests on macOS and Windows cannot run
here; check they are valid YAML with the structure Actions needs and that they run files
that exist."""
import os
import shlex

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is part of the test extras")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("name,runner,real", [
    ("macos", "macos-latest", "tests/platform/test_real_darwin.py"),
    ("windows", "windows-latest", "tests/platform/test_real_windows.py"),
])
def test_workflow(name, runner, real):
    with open(os.path.join(REPO, ".github", "workflows", f"{name}.yml")) as f:
        doc = yaml.safe_load(f)
    assert doc["name"] == name
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert set(on) >= {"push", "pull_request"}
    (job,) = doc["jobs"].values()
    assert job["runs-on"] == runner
    assert isinstance(job.get("timeout-minutes"), int)
    steps = job["steps"]
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"]
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert isinstance(setup["with"]["python-version"], str)  # 3.10 must not become 3.1
    for s in steps:
        assert ("uses" in s) != ("run" in s), s
    runs = [s["run"] for s in steps if "run" in s]
    install = next(r for r in runs if "pip install" in r)
    assert '".[test]"' in install
    test = shlex.split(next(r for r in runs if "pytest" in r))
    assert test[:3] == ["python", "-m", "pytest"]
    files = [a for a in test if a.startswith("tests/")]
    assert real in files and "tests/unit/test_platforms_seam.py" in files
    for path in files:
        assert os.path.isfile(os.path.join(REPO, path)), path
