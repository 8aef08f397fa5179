"""Windows backend, pure parts: config → Job Object limits (table), → ctypes structures,
the ``windows`` section, executable resolution, refusals. Runs anywhere; the job is exercised
for real by tests/platform/test_real_windows.py on windows-latest."""
import ctypes

import pytest

from ociruntime.config.reader import Obj
from ociruntime.errors import ConfigError, Unsupported
from ociruntime.platforms import _win32 as W
from ociruntime.platforms import windows
from ociruntime.platforms.windows import job_limits, resolve_app
from ociruntime.platforms.windows_config import parse as parse_windows

BASE_FLAGS = W.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | W.JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION
HARD_CAP = W.JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | W.JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP
WEIGHT = W.JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | W.JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED


def limits(cfg, ncpu=8):
    o = Obj(cfg)
    dropped = []
    wc = parse_windows(o.obj("windows"))
    j = job_limits(o, wc, ncpu, dropped)
    return {k: v for k, v in j.as_dict().items() if v not in (None, 0) or k == "flags"}, \
        wc.dropped + dropped


LIMIT_TABLE = [
    ("nothing", {}, {"flags": BASE_FLAGS, "ui": W.JOB_OBJECT_UILIMIT_ALL}, []),
    ("windows memory", {"windows": {"resources": {"memory": {"limit": 512 << 20}}}},
     {"flags": BASE_FLAGS | W.JOB_OBJECT_LIMIT_JOB_MEMORY, "job_memory": 512 << 20}, []),
    ("linux and windows memory: the smaller",
     {"windows": {"resources": {"memory": {"limit": 512 << 20}}},
      "linux": {"resources": {"memory": {"limit": 256 << 20}}}},
     {"flags": BASE_FLAGS | W.JOB_OBJECT_LIMIT_JOB_MEMORY, "job_memory": 256 << 20}, []),
    ("memory -1 is unlimited", {"linux": {"resources": {"memory": {"limit": -1}}}},
     {"flags": BASE_FLAGS}, []),
    ("cpu maximum", {"windows": {"resources": {"cpu": {"maximum": 2500}}}},
     {"flags": BASE_FLAGS, "cpu_control": HARD_CAP, "cpu_value": 2500}, []),
    ("linux quota: half a cpu of 8", {"linux": {"resources": {"cpu": {"quota": 50000,
                                                                      "period": 100000}}}},
     {"flags": BASE_FLAGS, "cpu_control": HARD_CAP, "cpu_value": 625}, []),
    ("quota beyond all cpus caps at 10000",
     {"linux": {"resources": {"cpu": {"quota": 10 ** 7, "period": 100000}}}},
     {"flags": BASE_FLAGS, "cpu_control": HARD_CAP, "cpu_value": 10000}, []),
    ("windows shares: weight", {"windows": {"resources": {"cpu": {"shares": 10000}}}},
     {"flags": BASE_FLAGS, "cpu_control": WEIGHT, "cpu_value": 9}, []),
    ("linux shares 1024: default weight 5", {"linux": {"resources": {"cpu": {"shares": 1024}}}},
     {"flags": BASE_FLAGS, "cpu_control": WEIGHT, "cpu_value": 5}, []),
    ("linux shares 2: weight 1", {"linux": {"resources": {"cpu": {"shares": 2}}}},
     {"flags": BASE_FLAGS, "cpu_control": WEIGHT, "cpu_value": 1}, []),
    ("cap and weight: the cap wins",
     {"windows": {"resources": {"cpu": {"maximum": 5000, "shares": 100}}}},
     {"flags": BASE_FLAGS, "cpu_control": HARD_CAP, "cpu_value": 5000},
     ["cpu shares: a Job Object has either a hard cap or a weight; the cap wins"]),
    ("cpu count: affinity", {"windows": {"resources": {"cpu": {"count": 3}}}},
     {"flags": BASE_FLAGS | W.JOB_OBJECT_LIMIT_AFFINITY, "affinity": 0b111}, []),
    ("count beyond the host: every cpu", {"windows": {"resources": {"cpu": {"count": 99}}}},
     {"flags": BASE_FLAGS | W.JOB_OBJECT_LIMIT_AFFINITY, "affinity": 0xFF}, []),
    ("cpuset intersected with count",
     {"windows": {"resources": {"cpu": {"count": 4}}},
      "linux": {"resources": {"cpu": {"cpus": "2-5,7"}}}},
     {"flags": BASE_FLAGS | W.JOB_OBJECT_LIMIT_AFFINITY, "affinity": 0b1100}, []),
    ("pids and RLIMIT_NPROC: the smaller",
     {"linux": {"resources": {"pids": {"limit": 10}}},
      "process": {"rlimits": [{"type": "RLIMIT_NPROC", "soft": 4, "hard": 8}]}},
     {"flags": BASE_FLAGS | W.JOB_OBJECT_LIMIT_ACTIVE_PROCESS, "active_processes": 4}, []),
    ("rlimits", {"process": {"rlimits": [
        {"type": "RLIMIT_AS", "soft": 1 << 30, "hard": 1 << 31},
        {"type": "RLIMIT_DATA", "soft": 1 << 29, "hard": 1 << 29},
        {"type": "RLIMIT_CPU", "soft": 5, "hard": 10},
        {"type": "RLIMIT_NOFILE", "soft": 5, "hard": 10}]}},
     {"flags": BASE_FLAGS | W.JOB_OBJECT_LIMIT_PROCESS_MEMORY | W.JOB_OBJECT_LIMIT_PROCESS_TIME,
      "process_memory": 1 << 29, "process_user_time": 50_000_000},
     ["process.rlimits[3]: RLIMIT_NOFILE has no Job Object counterpart"]),
    ("windows fields that do not map", {"windows": {
        "layerFolders": ["C:\\layers\\1"], "network": {"endpointList": ["x"]},
        "devices": [{"id": "GUID", "idType": "class"}], "servicing": True,
        "resources": {"storage": {"iops": 100}}}},
     {"flags": BASE_FLAGS},
     ["windows.resources.storage.iops: storage limits are not enforced on windows",
      "windows.layerFolders: image layers are not mounted on windows; root.path is used as "
      "a plain directory",
      "windows.network: not supported on windows",
      "windows.devices[0]: device assignment is not supported on windows",
      "windows.servicing: not supported on windows"]),
]


@pytest.mark.parametrize("cfg,expected,dropped", [t[1:] for t in LIMIT_TABLE],
                         ids=[t[0] for t in LIMIT_TABLE])
def test_job_limit_mapping(cfg, expected, dropped):
    got, got_dropped = limits(cfg)
    expected = dict(expected)
    expected.setdefault("ui", W.JOB_OBJECT_UILIMIT_ALL)
    assert got == expected
    assert got_dropped == dropped


@pytest.mark.parametrize("cfg,exc,match", [
    ({"windows": {"hyperv": {}}}, Unsupported, r"^windows\.hyperv: Hyper-V isolation is not "
                                                r"supported"),
    ({"windows": {"hyperv": {"utilityVMPath": "C:\\uvm"}}}, Unsupported, "Hyper-V"),
    ({"windows": {"hyperv": "yes"}}, ConfigError, r"^windows\.hyperv: must be an object$"),
    ({"windows": {"resources": {"cpu": {"maximum": 0}}}}, ConfigError,
     r"^windows\.resources\.cpu\.maximum: must be >= 1$"),
    ({"windows": {"resources": {"cpu": {"maximum": 10001}}}}, ConfigError,
     r"^windows\.resources\.cpu\.maximum: must be <= 10000$"),
    ({"windows": {"resources": {"cpu": {"count": 0}}}}, ConfigError,
     r"^windows\.resources\.cpu\.count: must be >= 1$"),
    ({"windows": {"resources": {"memory": {"limit": "1G"}}}}, ConfigError,
     r"^windows\.resources\.memory\.limit: must be an integer$"),
    ({"linux": {"resources": {"cpu": {"cpus": "0-9"}}}}, ConfigError,
     r"^linux\.resources\.cpu\.cpus: cpu 9 does not exist here \(8 cpus"),
    ({"linux": {"resources": {"cpu": {"cpus": "3-1"}}}}, ConfigError, "invalid cpu range"),
    ({"linux": {"resources": {"cpu": {"cpus": "x"}}}}, ConfigError, "invalid cpu list"),
    ({"linux": {"resources": {"cpu": {"cpus": "6"}}}, "windows": {"resources": {"cpu": {
        "count": 2}}}}, ConfigError, "no cpu left"),
    ({"linux": {"resources": {"pids": {"limit": 0}}}}, ConfigError,
     r"^linux\.resources\.pids\.limit: must allow at least 1 process$"),
])
def test_job_limit_refusals(cfg, exc, match):
    with pytest.raises(exc, match=match):
        limits(cfg)


def test_job_structs_carry_the_limits():
    j, _ = limits({"windows": {"resources": {"memory": {"limit": 1 << 30},
                                             "cpu": {"maximum": 1500, "count": 2}}},
                   "linux": {"resources": {"pids": {"limit": 7}}},
                   "process": {"rlimits": [{"type": "RLIMIT_AS", "soft": 1 << 28,
                                            "hard": 1 << 28}]}})
    lim = windows.JobLimits.from_dict(dict(windows.JobLimits().as_dict(), **j))
    ext, cpu, ui = W.job_structs(lim)
    b = ext.BasicLimitInformation
    assert b.LimitFlags == j["flags"]
    assert b.LimitFlags & W.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    assert (b.ActiveProcessLimit, b.Affinity) == (7, 0b11)
    assert (ext.JobMemoryLimit, ext.ProcessMemoryLimit) == (1 << 30, 1 << 28)
    assert (cpu.ControlFlags, cpu.Value) == (HARD_CAP, 1500)
    assert ui.UIRestrictionsClass == 0xFF
    ext, cpu, ui = W.job_structs(windows.JobLimits())
    assert cpu is None and ext.JobMemoryLimit == 0


@pytest.mark.skipif(ctypes.sizeof(ctypes.c_void_p) != 8, reason="layouts checked for 64-bit")
def test_struct_layouts_match_win64():
    assert ctypes.sizeof(W.JOBOBJECT_BASIC_LIMIT_INFORMATION) == 64
    assert ctypes.sizeof(W.JOBOBJECT_EXTENDED_LIMIT_INFORMATION) == 144
    assert W.JOBOBJECT_EXTENDED_LIMIT_INFORMATION.ProcessMemoryLimit.offset == 112
    assert ctypes.sizeof(W.JOBOBJECT_CPU_RATE_CONTROL_INFORMATION) == 8
    assert ctypes.sizeof(W.JOBOBJECT_BASIC_ACCOUNTING_INFORMATION) == 48
    assert W.JOBOBJECT_BASIC_ACCOUNTING_INFORMATION.ActiveProcesses.offset == 40
    assert ctypes.sizeof(W.STARTUPINFOW) == 104
    assert ctypes.sizeof(W.PROCESS_INFORMATION) == 24


def test_env_block():
    buf = W.env_block(["b=2", "A=1", "Path=C:\\x"])
    assert buf[:] == "A=1\0b=2\0Path=C:\\x\0\0"


FILES = {"c:\\windows\\system32\\cmd.exe", "c:\\bundle\\rootfs\\app\\run.bat",
         "c:\\bundle\\rootfs\\tool.exe", "d:\\bin\\python.exe"}
isfile = lambda p: p.lower() in FILES  # noqa: E731


@pytest.mark.parametrize("arg0,path,expected", [
    ("cmd", "C:\\Windows\\System32", "C:\\Windows\\System32\\cmd.exe"),
    ("cmd.exe", "C:\\nothing;C:\\Windows\\System32", "C:\\Windows\\System32\\cmd.exe"),
    ("D:\\bin\\python.exe", "", "D:\\bin\\python.exe"),
    ("/app/run", "", "C:\\bundle\\rootfs\\app\\run.bat"),
    ("tool", "C:\\nothing", "C:\\bundle\\rootfs\\tool.exe"),
])
def test_resolve_app(arg0, path, expected):
    assert resolve_app("C:\\bundle\\rootfs", arg0, path, isfile) == expected


def test_resolve_app_missing():
    with pytest.raises(ConfigError, match=r"^process\.args\[0\]: nope: not found"):
        resolve_app("C:\\r", "nope", "C:\\Windows", isfile)


def test_plan_windows_config():
    cfg = {"ociVersion": "1.3.0",
           "process": {"args": ["cmd", "/c", "echo hi there"], "cwd": "C:\\work",
                       "env": ["PATH=C:\\Windows\\System32"]},
           "root": {"path": "rootfs"},
           "windows": {"resources": {"memory": {"limit": 1 << 30}, "cpu": {"maximum": 5000}}}}
    p = windows.plan(cfg, "C:\\bundle", "C:\\state", ncpu=4, isfile=isfile,
                     environ={"SYSTEMROOT": "C:\\Windows"})
    assert p.dropped == []
    assert p.data["app"] == "C:\\Windows\\System32\\cmd.exe"
    assert p.data["cmdline"] == 'cmd /c "echo hi there"'
    assert p.data["cwd"] == "C:\\work"
    assert p.data["env"] == ["PATH=C:\\Windows\\System32", "SYSTEMROOT=C:\\Windows"]
    assert p.data["limits"]["job_memory"] == 1 << 30
    cfg["process"]["commandLine"] = "cmd /c ver"
    cfg["process"]["cwd"] = "/"
    p = windows.plan(cfg, "C:\\bundle", "C:\\state", ncpu=4, isfile=isfile, environ={})
    assert p.data["cmdline"] == "cmd /c ver" and p.data["cwd"] == "C:\\bundle\\rootfs"


def test_plan_linux_config_drops_what_a_job_cannot_do():
    from ociruntime.spec import default_spec
    cfg = default_spec(["cmd"])
    cfg["process"]["env"] = ["PATH=C:\\Windows\\System32"]
    dropped = windows.plan(cfg, "C:\\bundle", "C:\\state", ncpu=4, isfile=isfile,
                           environ={}).dropped
    for d in ("root.readonly: no filesystem confinement on windows",
              "linux.namespaces[1]: no network namespace on windows",
              "linux.maskedPaths: not enforced on windows",
              "linux.resources.devices: not enforced on windows",
              "process.capabilities: no Linux capabilities on windows",
              "mounts[0]: no mounts on windows (/proc); the process sees the host filesystem",
              "process.rlimits[0]: RLIMIT_NOFILE has no Job Object counterpart"):
        assert d in dropped


def test_object_names_are_per_state_dir():
    a, b = windows.object_names("/run/ocirun/a"), windows.object_names("/run/ocirun/b")
    assert a != b and a[0].startswith("Local\\ocirun-") and a[1] == a[0] + "-start"
