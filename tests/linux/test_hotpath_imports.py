"""The hot-path commands import only what they need (docs/benchmarks.md, "Hot path").

Every ``ocirun`` process pays for its imports: ctypes ~3 ms, json (+re) ~9 ms, signal (enum)
~7 ms here, even os ~1.5 ms (6.4 M instructions: ociruntime.osfast stands in for it). ``start``, ``state``, ``kill``, ``delete`` and ``list`` run on a real container
through a probe launcher (the fast launcher's ``-I -S`` interpreter and path, then a dump of
``sys.modules``), and must not have loaded any module below."""
import os
import sys
import time

import pytest

from conftest import REPO, Runner

# never on these paths
FORBIDDEN = {"ctypes", "_ctypes", "json", "re", "signal", "subprocess", "enum", "argparse",
             "dataclasses", "typing", "threading", "socket", "ociruntime.linux.syscalls",
             "ociruntime.config.model", "ociruntime.config.reader", "ociruntime.linux.rootfs",
             "ociruntime.linux.init", "ociruntime.linux.seccomp",
             "ociruntime.cli.cmd_exec", "ociruntime.cli.cmd_resources"}
# os itself: the short commands use ociruntime.osfast (importing os costs 6.4 M instructions,
# 18% of a `state`)
SHORT_FORBIDDEN = {"os", "posixpath", "_collections_abc", "stat"}   # stat: its C _stat is used
# the cgroup managers: only delete (removes the cgroup) and kill --all need them
CGROUPS = {"ociruntime.linux.cgroups", "ociruntime.linux.cgroups.v1",
           "ociruntime.linux.cgroups.v2", "ociruntime.linux.cgroups.fs"}

PROBE = """#!{python} -IS
import posix
import sys
sys.path[:0] = [{repo!r}]
ME = posix.getpid()


def dump(rc, _exit=posix._exit):   # also when a command leaves through _exit (exec, run)
    if posix.getpid() == ME:
        with open({out!r}, "a") as f:
            f.write(" ".join(sorted(sys.modules)) + "\\n")
        sys.stdout.flush()
    _exit(rc)


posix._exit = dump    # before anything imports it (osfast, os) from posix


class Watch:   # any process of the command (bridge, init before its exec): a "+name" line
    def find_spec(self, name, path=None, target=None):
        if name in {watch!r}:
            with open({out!r}, "a") as f:
                f.write("+" + name + "\\n")
        return None


sys.meta_path.insert(0, Watch())
from ociruntime.cli.main import main
dump(main())
"""


@pytest.fixture
def probe(tmp_path, ocirun):
    out = str(tmp_path / "modules.txt")
    path = tmp_path / "ocirun-probe"
    path.write_text(PROBE.format(python=sys.executable, repo=REPO, out=out,
                                 watch=SHORT_FORBIDDEN))
    path.chmod(0o755)
    runner = Runner(ocirun.root, binary=str(path))

    def run(*args):
        if os.path.exists(out):
            os.unlink(out)
        p = runner(*args)
        assert p.returncode == 0, (args, p.stderr)
        with open(out) as f:
            return set(f.read().split())
    return run


def test_hot_path_imports(ocirun, make_bundle, probe):
    b = make_bundle(["sleep", "100"])
    b.linux["cgroupsPath"] = f"/ocirun-test/hotpath-{os.getpid()}"
    b.write()
    cid = f"hotpath-{os.getpid()}"
    ocirun.ok("create", "-b", b.path, cid, stdin=-3)
    try:
        seen = {}
        seen["start"] = probe("start", cid)
        seen["state"] = probe("state", cid)
        seen["list"] = probe("list")
        seen["kill"] = probe("kill", cid, "KILL")
        for _ in range(200):
            if ocirun.state(cid)["status"] == "stopped":
                break
            time.sleep(0.01)
        seen["delete"] = probe("delete", cid)
    finally:
        ocirun("delete", "--force", cid)
    assert cid not in ocirun.ids()
    for cmd, mods in seen.items():
        assert "ociruntime.cli.main" in mods, cmd       # the probe really ran the command
        bad = sorted(mods & (FORBIDDEN | SHORT_FORBIDDEN))
        assert not bad, f"ocirun {cmd} imported {bad}"
        if cmd != "delete":
            bad = sorted(mods & CGROUPS)
            assert not bad, f"ocirun {cmd} imported {bad}"
    assert "ociruntime.linux.cgroups.fs" in seen["delete"]  # it did remove the cgroup


def test_probe_sees_a_forbidden_import(probe, ocirun):
    """The check can fail: ``spec`` (not a hot-path command) imports json, ``features``
    os."""
    cwd = os.getcwd()
    d = os.path.join(ocirun.root + "-spec")
    os.makedirs(d)
    try:
        os.chdir(d)
        mods = probe("spec")
    finally:
        os.chdir(cwd)
    assert "json" in mods
    assert "os" in probe("features")    # features reads the kernel release through os


# create, run and exec need a few raw syscalls, but not the ctypes package (~2.5 ms): they go
# through ociruntime.linux.ffi on _ctypes. Nor json/re/subprocess/enum, nor os.
HEAVY_FORBIDDEN = {"ctypes", "json", "re", "signal", "subprocess", "enum", "argparse",
                   "typing", "threading", "struct", "ociruntime.linux.seccomp"} | SHORT_FORBIDDEN


def test_create_run_exec_imports(ocirun, make_bundle, probe):
    b = make_bundle(["sleep", "100"])
    b.write()
    cid = f"hotpath-heavy-{os.getpid()}"
    seen = {}
    try:
        seen["create"] = probe("create", "-b", b.path, cid)
        ocirun.ok("start", cid)
        seen["exec"] = probe("exec", cid, "true")
        t = make_bundle(["true"])
        t.write()
        seen["run"] = probe("run", "-b", t.path, cid + "-run")
    finally:
        ocirun("delete", "--force", cid)
        ocirun("delete", "--force", cid + "-run")
    for cmd, mods in seen.items():
        assert "ociruntime.linux.syscalls" in mods, cmd   # it did make raw syscalls
        bad = sorted(mods & HEAVY_FORBIDDEN)
        assert not bad, f"ocirun {cmd} imported {bad}"
        bad = sorted(m for m in mods if m.startswith("+"))
        assert not bad, f"a process of ocirun {cmd} (bridge, init) imported {bad}"
