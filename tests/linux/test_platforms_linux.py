"""The Linux backend through the platform seam: the same calls the macOS and Windows
backends answer, on real containers (root)."""
import os
import signal

import pytest

from ociruntime import platforms
from ociruntime.platforms.base import CREATED, RUNNING, STOPPED

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/ns"), reason="needs Linux")


def test_linux_lifecycle_through_the_seam(ocirun, make_bundle, tmp_path):
    b = make_bundle(args=["sh", "-c", "echo hello from $(hostname)"])
    p = platforms.current()
    assert p.name == "linux"
    sd = os.path.join(ocirun.root, "seam1")
    os.makedirs(sd)
    out = str(tmp_path / "out")
    pid = platforms.create("seam1", b.path, sd, platform=p, stdio=(None, out, out))
    assert p.state(sd).status == CREATED and p.state(sd).pid == pid
    assert ocirun.state("seam1")["status"] == "created"  # same state the CLI reads
    p.start(sd)
    assert p.wait(sd, timeout=30) is None
    assert p.state(sd).status == STOPPED
    p.delete(sd)
    assert not os.path.exists(sd)
    with open(out) as f:
        assert f.read() == "hello from ocirun\n"


def test_linux_kill_and_force_delete(ocirun, make_bundle):
    b = make_bundle(args=["sleep", "60"])
    p = platforms.current()
    sd = os.path.join(ocirun.root, "seam2")
    platforms.create("seam2", b.path, sd, platform=p)
    p.start(sd)
    assert p.state(sd).status == RUNNING
    p.kill(sd, signal.SIGKILL)
    p.wait(sd, timeout=30)
    assert p.state(sd).status == STOPPED
    p.delete(sd, force=True)
    assert ocirun.ids() == []


def test_linux_features_come_from_the_linux_runtime():
    f = platforms.current().features()
    assert "pid" in f["linux"]["namespaces"]


def test_linux_plan_drops_nothing(make_bundle):
    b = make_bundle()
    plan = platforms.current().prepare(b.config, b.path, "/nonexistent/x")
    assert plan.dropped == [] and plan.data == b.path
