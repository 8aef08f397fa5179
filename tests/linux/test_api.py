"""The Python API: the example of docs/api.md, run for real."""
import os

import pytest

from ociruntime.api import Runtime
from ociruntime.errors import ConfigError, ContainerNotFound, StateError


def test_api_walkthrough(ocirun, make_bundle, tmp_path):
    rt = Runtime(root=ocirun.root)
    b = make_bundle(["sleep", "30"])
    pid = rt.create("web", b.path, pid_file=str(tmp_path / "pid"))
    assert (tmp_path / "pid").read_text() == str(pid)
    assert rt.state("web")["status"] == "created"
    rt.start("web")
    assert rt.state("web")["status"] == "running"
    assert pid in rt.ps("web")
    with pytest.raises(StateError, match="^cannot delete container web that is not stopped: running$"):
        rt.delete("web")
    rt.kill("web", "KILL")
    rt.wait("web", timeout=10)
    assert rt.state("web")["status"] == "stopped"
    rt.delete("web")
    with pytest.raises(ContainerNotFound, match="container does not exist"):
        rt.state("web")


def test_api_run_returns_status_and_config_errors_name_fields(ocirun, make_bundle):
    rt = Runtime(root=ocirun.root)
    b = make_bundle(["sh", "-c", "exit 5"])
    r, w = os.pipe()
    try:
        saved = os.dup(1)
        os.dup2(w, 1)
        try:
            assert rt.run("job", b.path) == 5
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    finally:
        os.close(r)
        os.close(w)
    b.config["process"]["user"]["uid"] = -3
    b.write()
    with pytest.raises(ConfigError) as e:
        rt.create("bad", b.path)
    assert e.value.field == "process.user.uid"
