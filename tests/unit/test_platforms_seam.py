"""The platform seam with a fake backend: selection, refusal, best effort, and that every
backend module imports on Linux without touching Windows-only ctypes."""
import ctypes
import importlib
import json
import os
import sys

import pytest

from ociruntime import platforms
from ociruntime.errors import ConfigError, Unsupported
from ociruntime.platforms.base import CREATED, RUNNING, STOPPED, Plan, Platform, Status


class FakePlatform(Platform):
    """Records calls; drops what ``drop`` names."""
    name = "fake"

    def __init__(self, drop=()):
        self.calls = []
        self.drop = list(drop)
        self.status = None

    def features(self):
        return {"platform": {"os": self.name}}

    def prepare(self, config, bundle, state_dir):
        self.calls.append(("prepare", config["process"]["args"], bundle, state_dir))
        return Plan(self.name, {"args": config["process"]["args"]}, self.drop)

    def create(self, cid, plan, state_dir, stdio=None):
        self.calls.append(("create", cid, plan.data, stdio))
        self.status = CREATED
        return 4242

    def start(self, state_dir):
        self.calls.append(("start",))
        self.status = RUNNING

    def state(self, state_dir):
        return Status(self.status, 4242)

    def kill(self, state_dir, sig, all=False):
        self.calls.append(("kill", sig, all))
        self.status = STOPPED

    def wait(self, state_dir, timeout=None):
        return 137

    def delete(self, state_dir, force=False):
        self.calls.append(("delete", force))


@pytest.fixture
def bundle(tmp_path):
    def make(annotations=None):
        cfg = {"ociVersion": "1.3.0", "process": {"args": ["app"], "cwd": "/"},
               "root": {"path": "rootfs"}}
        if annotations:
            cfg["annotations"] = annotations
        (tmp_path / "config.json").write_text(json.dumps(cfg))
        (tmp_path / "state").mkdir(exist_ok=True)
        return str(tmp_path), str(tmp_path / "state")
    return make


def test_lifecycle_through_the_seam(bundle):
    b, sd = bundle()
    p = FakePlatform()
    assert platforms.create("c1", b, sd, platform=p) == 4242
    assert p.calls == [("prepare", ["app"], b, sd), ("create", "c1", {"args": ["app"]}, None)]
    assert p.state(sd).status == CREATED
    p.start(sd)
    assert p.state(sd).status == RUNNING
    p.kill(sd, 9)
    assert p.state(sd).status == STOPPED and p.wait(sd) == 137


def test_refused_without_best_effort(bundle):
    b, sd = bundle()
    p = FakePlatform(drop=["linux.seccomp: no seccomp on fake",
                           "linux.namespaces[0]: no pid namespace on fake"])
    with pytest.raises(Unsupported) as e:
        platforms.create("c1", b, sd, platform=p)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("fake cannot enforce: linux.seccomp: no seccomp on fake; "
                          "linux.namespaces[0]: no pid namespace on fake")
    assert "--best-effort" in msg and "run.oci.best-effort" in msg
    assert [c[0] for c in p.calls] == ["prepare"]  # nothing was created


@pytest.mark.parametrize("flag,annotations,runs", [
    (True, None, True),
    (False, {"run.oci.best-effort": "true"}, True),
    (False, {"run.oci.best-effort": "false"}, False),
    (False, {"run.oci.best-effort": "yes"}, False),
])
def test_best_effort_flag_and_annotation(bundle, flag, annotations, runs):
    b, sd = bundle(annotations)
    p = FakePlatform(drop=["linux.seccomp: no seccomp on fake"])
    warnings = []
    if runs:
        platforms.create("c1", b, sd, best_effort=flag, warn=warnings.append, platform=p)
        assert warnings == ["best effort on fake: dropped linux.seccomp: no seccomp on fake"]
        assert p.calls[-1][0] == "create"
    else:
        with pytest.raises(Unsupported):
            platforms.create("c1", b, sd, best_effort=flag, warn=warnings.append, platform=p)
        assert warnings == []


def test_best_effort_default_warns_on_stderr(bundle, capsys):
    b, sd = bundle()
    platforms.create("c1", b, sd, best_effort=True,
                     platform=FakePlatform(drop=["linux.sysctl: not enforced on fake"]))
    assert capsys.readouterr().err == \
        "ocirun: warning: best effort on fake: dropped linux.sysctl: not enforced on fake\n"


def test_nothing_dropped_no_warning(bundle):
    b, sd = bundle()
    warnings = []
    platforms.create("c1", b, sd, warn=warnings.append, platform=FakePlatform())
    assert warnings == []


def test_bad_config_json(tmp_path):
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(ConfigError, match="invalid JSON"):
        platforms.create("c1", str(tmp_path), str(tmp_path), platform=FakePlatform())
    with pytest.raises(ConfigError, match="cannot read"):
        platforms.create("c1", str(tmp_path / "missing"), str(tmp_path), platform=FakePlatform())


@pytest.mark.parametrize("plat,cls", [("linux", "LinuxPlatform"), ("darwin", "DarwinPlatform"),
                                      ("win32", "WindowsPlatform")])
def test_current_chooses_by_sys_platform(monkeypatch, plat, cls):
    monkeypatch.setattr(sys, "platform", plat)
    p = platforms.current()
    assert type(p).__name__ == cls
    assert isinstance(p, Platform)


def test_unknown_platform_refused(monkeypatch):
    monkeypatch.setattr(sys, "platform", "sunos5")
    with pytest.raises(Unsupported, match="no ocirun backend for platform 'sunos5'"):
        platforms.current()


def test_backends_import_on_linux_without_windll():
    assert not hasattr(ctypes, "windll") or sys.platform == "win32"
    for m in ("windows", "_win32", "windows_monitor", "windows_config", "darwin",
              "_darwin_sys", "posix", "linux"):
        importlib.import_module(f"ociruntime.platforms.{m}")
    if sys.platform != "win32":
        from ociruntime.platforms import _win32
        with pytest.raises((AttributeError, OSError)):
            _win32.kernel32()


def test_features_report_what_is_enforced():
    from ociruntime.platforms import darwin, windows
    for f in (darwin.features(), windows.features()):
        assert f["ociVersionMax"] == "1.3.0"
        p = f["platform"]
        assert p["enforced"] and p["approximated"] and p["notEnforced"]
    assert "seccomp" in darwin.features()["platform"]["notEnforced"]
    assert windows.features()["platform"]["refused"] == ["windows.hyperv"]


def test_platform_modules_do_not_slow_the_hot_path():
    import subprocess
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(platforms.__file__))))
    code = (f"import sys; sys.path.insert(0, {repo!r}); import ociruntime.platforms; "
            "import ociruntime.platforms.darwin; "
            "bad = [m for m in ('json', 're', 'subprocess', 'ctypes', 'jsonschema') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True)
    assert out.stdout.strip() == "[]", out.stderr
