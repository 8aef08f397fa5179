"""macOS backend, pure parts: config → SBPL profile and rlimits, table-driven, plus refusals.
These run anywhere; the profile is exercised for real by tests/platform/test_real_darwin.py
on macos-latest (.github/workflows/macos.yml)."""
import os

import pytest

from ociruntime.errors import ConfigError
from ociruntime.platforms import darwin
from ociruntime.platforms.darwin import Sandbox, resolve_in_root, sbpl
from ociruntime.spec import default_spec


# ---------------------------------------------------------------- sbpl(), pure

def _body(text):
    """The profile without the fixed system part: the lines that depend on the config."""
    lines = text.splitlines()
    return lines[lines.index(next(x for x in lines if x.startswith("; the rootfs"))):]


SBPL_TABLE = [
    (Sandbox("/r"), [
        "; the rootfs: read, exec",
        '(allow file-read* (subpath "/r"))',
        '(allow process-exec (subpath "/r"))',
        "; network namespace in the config: no network"]),
    (Sandbox("/r", rootfs_writable=True, network=True), [
        "; the rootfs: read, exec, write",
        '(allow file-read* (subpath "/r"))',
        '(allow process-exec (subpath "/r"))',
        '(allow file-write* (subpath "/r"))',
        "; no network namespace in the config: host network",
        "(allow network*)",
        '(allow mach-lookup (global-name "com.apple.dnssd.service"))']),
    (Sandbox("/r", read=["/data"], write=["/w1", "/w2"], deny=["/r/secret"],
             deny_write=["/r/etc"]), [
        "; the rootfs: read, exec",
        '(allow file-read* (subpath "/r"))',
        '(allow process-exec (subpath "/r"))',
        "; read-only mounts",
        '(allow file-read* (subpath "/data"))',
        "; writable mounts and per-container tmpfs directories",
        "(allow file-read* file-write*",
        '  (subpath "/w1")',
        '  (subpath "/w2"))',
        "; network namespace in the config: no network",
        "; linux.maskedPaths",
        '(deny file-read* file-write* (subpath "/r/secret"))',
        "; linux.readonlyPaths",
        '(deny file-write* (subpath "/r/etc"))']),
    (Sandbox('/odd "dir"\\x'), [
        "; the rootfs: read, exec",
        '(allow file-read* (subpath "/odd \\"dir\\"\\\\x"))',
        '(allow process-exec (subpath "/odd \\"dir\\"\\\\x"))',
        "; network namespace in the config: no network"]),
]


@pytest.mark.parametrize("sb,expected", SBPL_TABLE)
def test_sbpl_table(sb, expected):
    text = sbpl(sb)
    assert text.startswith("(version 1)\n(deny default)\n")
    assert _body(text) == expected


def test_sbpl_is_balanced_and_denies_last():
    text = sbpl(Sandbox("/r", read=["/a"], write=["/b"], network=True, deny=["/r/m"],
                        deny_write=["/r/ro"]))
    depth = 0
    for ch in text.replace('\\"', "").split('"')[::2]:  # outside string literals
        for c in ch:
            depth += (c == "(") - (c == ")")
            assert depth >= 0
    assert depth == 0
    allow_last = max(i for i, line in enumerate(text.splitlines()) if line.startswith("(allow"))
    deny_first = min(i for i, line in enumerate(text.splitlines())
                     if line.startswith("(deny file"))
    assert deny_first > allow_last  # last match wins in SBPL


def test_sbpl_refuses_control_characters():
    with pytest.raises(ValueError, match="control character"):
        sbpl(Sandbox("/r\nx"))


# ---------------------------------------------------------------- plan(): config → profile

@pytest.fixture
def rootfs(tmp_path):
    r = tmp_path / "bundle" / "rootfs"
    (r / "bin").mkdir(parents=True)
    (r / "bin" / "app").write_text("#!/bin/sh\n")
    (r / "bin" / "sh").symlink_to("/bin/app")       # absolute link: resolved inside rootfs
    (r / "bin" / "evil").symlink_to("/etc/passwd")  # would escape if followed on the host
    (r / "work").mkdir()
    (tmp_path / "state").mkdir()
    (tmp_path / "data").mkdir()
    return r


def mac_config(**kw):
    """A config written for macOS: nothing it asks for is dropped."""
    cfg = {"ociVersion": "1.3.0",
           "process": {"args": ["app", "-x"], "cwd": "/work",
                       "env": ["PATH=/usr/bin:/bin", "HOME=/"],
                       "user": {"uid": 0, "gid": 0},
                       "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}]},
           "root": {"path": "rootfs", "readonly": True},
           "mounts": [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}],
           "linux": {"namespaces": [{"type": "network"}]}}
    cfg.update(kw)
    return cfg


def _plan(cfg, rootfs, euid=1000):
    bundle = str(rootfs.parent)
    return darwin.plan(cfg, bundle, str(rootfs.parent.parent / "state"), euid=euid)


def test_plan_mac_config_drops_nothing(rootfs):
    cfg = mac_config()
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    p = _plan(cfg, rootfs)
    assert p.dropped == []
    s = p.data
    root = str(rootfs)
    assert s.path == f"{root}/bin/app" and s.argv == ["app", "-x"]
    assert s.cwd == f"{root}/work"
    assert s.rlimits == [("RLIMIT_NOFILE", 256, 512)]
    assert s.uid is None  # not root: runs as ourselves
    tmp = s.dirs[0]
    assert tmp.startswith(str(rootfs.parent.parent / "state" / "tmpfs"))
    assert s.env == [f"PATH={root}/usr/bin:{root}/bin", "HOME=/", f"TMPDIR={tmp}"]
    assert f'(allow file-read* file-write* (subpath "{tmp}"))' in s.profile
    assert "(allow network*)" not in s.profile
    assert f'(allow file-write* (subpath "{root}"))' not in s.profile  # root.readonly


def test_plan_host_network_and_writable_root(rootfs):
    cfg = mac_config(root={"path": "rootfs", "readonly": False}, linux={})
    prof = _plan(cfg, rootfs, euid=0).data.profile
    assert "(allow network*)" in prof
    assert f'(allow file-write* (subpath "{rootfs}"))' in prof


def test_plan_bind_mounts(rootfs):
    data = rootfs.parent.parent / "data"
    cfg = mac_config(mounts=[
        {"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "ro"]},
        {"destination": "/out", "type": "none", "source": str(data), "options": ["bind", "rw"]},
    ])
    prof = _plan(cfg, rootfs, euid=0).data.profile
    assert f'(allow file-read* (subpath "{data}"))' in prof
    assert f'(allow file-read* file-write* (subpath "{data}"))' in prof


def test_plan_root_sets_credentials_and_resources_map_to_rlimits(rootfs):
    cfg = mac_config()
    cfg["process"]["user"] = {"uid": 501, "gid": 20, "additionalGids": [12], "umask": 0o22}
    cfg["process"]["rlimits"].append({"type": "RLIMIT_AS", "soft": 1 << 40, "hard": 1 << 40})
    cfg["linux"]["resources"] = {"memory": {"limit": 256 << 20}, "pids": {"limit": 64},
                                 "devices": [{"allow": False, "access": "rwm"}]}
    p = _plan(cfg, rootfs, euid=0)
    assert p.dropped == []
    s = p.data
    assert (s.uid, s.gid, s.groups, s.umask) == (501, 20, [12], 0o22)
    assert s.rlimits == [("RLIMIT_AS", 256 << 20, 256 << 20), ("RLIMIT_NOFILE", 256, 512),
                         ("RLIMIT_NPROC", 64, 64)]


def test_plan_masked_and_readonly_paths_are_denied_inside_the_rootfs(rootfs):
    cfg = mac_config()
    cfg["linux"]["maskedPaths"] = ["/work/secret"]
    cfg["linux"]["readonlyPaths"] = ["/etc"]
    prof = _plan(cfg, rootfs, euid=0).data.profile
    assert f'(deny file-read* file-write* (subpath "{rootfs}/work/secret"))' in prof
    assert f'(deny file-write* (subpath "{rootfs}/etc"))' in prof


DROP_TABLE = [
    ({"linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}},
     ["linux.namespaces[0]: no pid namespace on darwin"]),
    ({"linux": {"namespaces": [{"type": "network", "path": "/var/run/netns/x"}]}},
     ["linux.namespaces[0]: cannot join a network namespace (/var/run/netns/x) on darwin"]),
    ({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}, "sysctl": {"a.b": "1"},
                "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}},
     ["linux.seccomp: not enforced on darwin", "linux.sysctl: not enforced on darwin",
      "linux.devices: not enforced on darwin"]),
    ({"linux": {"resources": {"cpu": {"quota": 5000, "period": 10000},
                              "memory": {"limit": 1 << 30, "swap": 1 << 31},
                              "devices": [{"allow": True, "type": "c", "major": 1,
                                           "access": "rw"}]}}},
     ["linux.resources.devices[0]: device access is not granted on darwin",
      "linux.resources.cpu.quota: not enforced on darwin",
      "linux.resources.cpu.period: not enforced on darwin",
      "linux.resources.memory.swap: not enforced on darwin"]),
    ({"hostname": "box", "hooks": {"prestart": [{"path": "/bin/true"}]}},
     ["hooks.prestart: hooks are not run on darwin", "hostname: no UTS namespace on darwin"]),
    ({"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]},
     ["mounts[0]: proc mount at /proc is not realized on darwin"]),
]


@pytest.mark.parametrize("extra,dropped", DROP_TABLE)
def test_plan_drops(rootfs, extra, dropped):
    cfg = mac_config(**extra)
    assert _plan(cfg, rootfs, euid=0).dropped == dropped


def test_plan_process_drops(rootfs):
    cfg = mac_config()
    cfg["process"].update(terminal=True, noNewPrivileges=True, apparmorProfile="x",
                          capabilities={"bounding": ["CAP_KILL"]},
                          rlimits=[{"type": "RLIMIT_RTPRIO", "soft": 1, "hard": 1}])
    assert _plan(cfg, rootfs, euid=0).dropped == [
        "process.apparmorProfile: not enforced on darwin",
        "process.noNewPrivileges: not enforced on darwin",
        "process.terminal: no pty on darwin; the process inherits stdio",
        "process.capabilities: darwin cannot confine root by capabilities",
        "process.rlimits[0]: RLIMIT_RTPRIO does not exist on darwin"]


def test_plan_not_root_cannot_switch_user(rootfs):
    cfg = mac_config()
    cfg["process"]["user"] = {"uid": 0, "gid": 0}
    assert _plan(cfg, rootfs, euid=1000).dropped == [
        "process.user.uid: not root, runs as uid 1000 instead of 0"]


def test_default_spec_needs_best_effort(rootfs):
    cfg = default_spec(["app"])
    cfg["root"]["path"] = "rootfs"
    dropped = _plan(cfg, rootfs, euid=0).dropped
    assert "linux.namespaces[0]: no pid namespace on darwin" in dropped
    assert not any("network" in d for d in dropped)  # a new netns is enforced: no network
    assert "mounts[1]" not in " ".join(dropped)      # tmpfs /dev: a per-container directory


@pytest.mark.parametrize("cfg_change,path,msg", [
    (lambda c: c.pop("process"), "process", "is required"),
    (lambda c: c["process"].update(args=[]), "process.args", "must not be empty"),
    (lambda c: c["process"].update(args=["nope"]), "process.args[0]", "nope: not found"),
    (lambda c: c["process"].update(args=["/bin/evil"]), "process.args[0]", "not found"),
    (lambda c: c["process"].update(cwd="work"), "process.cwd", "absolute"),
    (lambda c: c["process"]["rlimits"].append(c["process"]["rlimits"][0]),
     "process.rlimits[1].type", "duplicate"),
    (lambda c: c["linux"]["namespaces"].append({"type": 7}), "linux.namespaces[1].type",
     "must be a string"),
    (lambda c: c["root"].update(path="nowhere"), "root.path", "not a directory"),
])
def test_plan_config_errors_name_the_path(rootfs, cfg_change, path, msg):
    cfg = mac_config()
    cfg_change(cfg)
    with pytest.raises(ConfigError) as e:
        _plan(cfg, rootfs, euid=0)
    assert e.value.field == path and msg in str(e.value)


def test_resolve_in_root_never_leaves_the_rootfs(rootfs):
    r = str(rootfs)
    (rootfs / "up").symlink_to("../../../..")
    (rootfs / "rel").symlink_to("bin/app")
    assert resolve_in_root(r, "/bin/sh") == f"{r}/bin/app"
    assert resolve_in_root(r, "/bin/evil") == f"{r}/etc/passwd"
    assert resolve_in_root(r, "/up/etc/passwd") == f"{r}/etc/passwd"
    assert resolve_in_root(r, "/../../x") == f"{r}/x"
    assert resolve_in_root(r, "/rel") == f"{r}/bin/app"
    assert resolve_in_root(r, "/") == r
    (rootfs / "loop").symlink_to("/loop")
    with pytest.raises(ConfigError, match="too many levels"):
        resolve_in_root(r, "/loop")


def test_exec_argv_wraps_with_sandbox_exec(rootfs, monkeypatch):
    s = _plan(mac_config(), rootfs, euid=0).data
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: p == darwin.SANDBOX_EXEC or real_exists(p))
    path, argv = darwin.DarwinPlatform().exec_argv(s)
    assert path == "/usr/bin/sandbox-exec"
    assert argv == ["/usr/bin/sandbox-exec", "-p", s.profile, s.path, "-x"]
    assert os.path.isabs(argv[3])


def test_no_sandbox_exec_no_container(rootfs, monkeypatch):
    from ociruntime.errors import Unsupported
    s = _plan(mac_config(), rootfs, euid=0).data
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: p != darwin.SANDBOX_EXEC and real_exists(p))
    with pytest.raises(Unsupported, match="sandbox-exec not found"):
        darwin.DarwinPlatform().exec_argv(s)


def test_path_entries_resolve_inside_the_rootfs(rootfs):
    (rootfs / "usr" / "bin").mkdir(parents=True)
    (rootfs / "sbin").symlink_to("/usr/bin")  # absolute: the host's /usr/bin if followed there
    cfg = mac_config()
    cfg["process"]["env"] = ["PATH=/sbin:/bin"]
    env = _plan(cfg, rootfs, euid=0).data.env
    assert env[0] == f"PATH={rootfs}/usr/bin:{rootfs}/bin"
