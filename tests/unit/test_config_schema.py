"""specs/config-schema.json through ociruntime.config.schema.validate: the configs we ship and
generate validate, a hand-built podman-style config validates, broken documents fail with the
JSON path of the broken field."""
import copy
import glob
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("jsonschema", reason="jsonschema is part of the test extras")

from ociruntime.config.schema import json_path, schema_path, validate  # noqa: E402
from ociruntime.spec import default_spec  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_schema_is_a_valid_draft_2020_12_schema():
    import jsonschema
    with open(schema_path()) as f:
        schema = json.load(f)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema_path() == os.path.join(REPO, "specs", "config-schema.json")


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "bundles", "*",
                                                               "config.json"))))
def test_repo_bundles_validate(path):
    with open(path) as f:
        assert validate(json.load(f)) == []


def test_repo_has_bundles():
    assert glob.glob(os.path.join(REPO, "bundles", "*", "config.json"))


@pytest.mark.parametrize("kw", [{}, {"rootless": True, "uid": 1000, "gid": 1000},
                                {"terminal": False, "args": ["sh", "-c", "true"]}])
def test_default_spec_validates(kw):
    assert validate(default_spec(**kw)) == []


PODMAN_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
               "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
               "CAP_SYS_CHROOT"]


def podman_config():
    """What podman 4 writes for `podman run --rm -v /srv:/data:ro alpine sh`, written by hand:
    many bind mounts, a joined network namespace, a seccomp profile with argument rules."""
    ctr = "/var/lib/containers/storage/overlay-containers/3f2a9c"
    binds = [("/etc/hostname", f"{ctr}/userdata/hostname"),
             ("/etc/resolv.conf", f"{ctr}/userdata/resolv.conf"),
             ("/etc/hosts", f"{ctr}/userdata/hosts"),
             ("/run/.containerenv", f"{ctr}/userdata/.containerenv"),
             ("/dev/shm", f"{ctr}/userdata/shm"),
             ("/run/secrets", f"{ctr}/userdata/run/secrets")]
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"]},
        {"destination": "/data", "type": "bind", "source": "/srv",
         "options": ["ro", "rbind", "rprivate", "nosuid", "nodev"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]},
    ] + [{"destination": d, "type": "bind", "source": s,
          "options": ["bind", "rprivate", "nosuid", "noexec", "nodev"]} for d, s in binds]
    syscalls = [
        {"names": ["accept", "accept4", "access", "arch_prctl", "bind", "brk", "capget",
                   "capset", "chdir", "chmod", "chown", "clock_gettime", "close",
                   "connect", "dup", "dup2", "dup3", "epoll_create1", "epoll_ctl",
                   "epoll_pwait", "execve", "exit", "exit_group", "faccessat2", "fchmod",
                   "fcntl", "fstat", "futex", "getcwd", "getdents64", "getpid", "ioctl",
                   "lseek", "mmap", "mprotect", "munmap", "openat", "pipe2", "read",
                   "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "set_tid_address",
                   "socket", "wait4", "write"],
         "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
                  {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
    ]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "user": {"uid": 0, "gid": 0, "umask": 18, "additionalGids": [0, 1, 2, 3, 4, 6, 10]},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm", "container=podman", "HOSTNAME=3f2a9c", "HOME=/root"],
            "cwd": "/",
            "capabilities": {"bounding": PODMAN_CAPS, "effective": PODMAN_CAPS,
                             "permitted": PODMAN_CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576},
                        {"type": "RLIMIT_NPROC", "hard": 4194304, "soft": 4194304}],
            "terminal": True,
            "consoleSize": {"height": 50, "width": 200},
            "oomScoreAdj": 0,
            "apparmorProfile": "containers-default-0.50.1",
        },
        "root": {"path": f"/var/lib/containers/storage/overlay/9b1c/merged"},
        "hostname": "3f2a9c",
        "mounts": mounts,
        "hooks": {"poststop": [{"path": "/usr/libexec/podman/hook", "args": ["hook", "stop"],
                                "env": ["A=1"], "timeout": 10}]},
        "annotations": {"io.container.manager": "libpod", "io.podman.annotations.autoremove":
                        "TRUE", "org.opencontainers.image.stopSignal": "15",
                        "io.kubernetes.cri-o.Created": "2024-05-01T10:00:00Z"},
        "linux": {
            "sysctl": {"net.ipv4.ping_group_range": "0 0"},
            "resources": {"pids": {"limit": 2048},
                          "memory": {"limit": 536870912, "swap": 1073741824},
                          "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
                          "devices": [{"allow": False, "access": "rwm"},
                                      {"allow": True, "type": "c", "major": 1, "minor": 3,
                                       "access": "rwm"}]},
            "cgroupsPath": "machine.slice:libpod:3f2a9c",
            "namespaces": [{"type": "pid"}, {"type": "network",
                                             "path": "/run/netns/netns-8a1b"},
                           {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                           {"type": "cgroup"}],
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
                                          "SCMP_ARCH_X32"],
                        "syscalls": syscalls},
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                            "/proc/scsi", "/sys/firmware", "/sys/fs/selinux", "/sys/dev/block"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
                              "/proc/sys", "/proc/sysrq-trigger"],
            "mountLabel": "system_u:object_r:container_file_t:s0:c1,c2",
        },
    }


def test_podman_style_config_validates():
    cfg = podman_config()
    assert len(cfg["mounts"]) >= 14 and len(cfg["linux"]["seccomp"]["syscalls"]) >= 5
    assert validate(cfg) == []


def test_spec_1_3_fields_validate():
    cfg = default_spec()
    cfg["process"].update(
        scheduler={"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 20, "period": 30,
                   "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
        ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 4},
        execCPUAffinity={"initial": "0", "final": "0-3,7"})
    cfg["domainname"] = "example.org"
    cfg["linux"].update(
        timeOffsets={"monotonic": {"secs": -10, "nanosecs": 5}},
        intelRdt={"closID": "c1", "schemata": ["L3:0=ff", "MB:0=50"], "enableMonitoring": True},
        memoryPolicy={"mode": "MPOL_INTERLEAVE", "nodes": "0-1",
                      "flags": ["MPOL_F_STATIC_NODES"]},
        netDevices={"eth1": {"name": "ctr1"}},
        personality={"domain": "LINUX32"},
        uidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
        rootfsPropagation="rslave")
    cfg["linux"]["resources"].update(
        hugepageLimits=[{"pageSize": "2MB", "limit": 0}],
        rdma={"mlx5_1": {"hcaHandles": 3}}, unified={"memory.high": "max"},
        blockIO={"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0,
                                                           "rate": 1048576}]})
    cfg["mounts"].append({"destination": "/m", "type": "bind", "source": "/srv",
                          "options": ["rbind", "idmap"],
                          "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                          "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]})
    assert validate(cfg) == []


def test_windows_config_validates():
    cfg = {"ociVersion": "1.3.0", "process": {"args": ["cmd"], "cwd": "C:\\",
                                              "user": {"username": "ContainerUser"}},
           "root": {"path": "\\\\?\\Volume{ec84d99e-3f02-11e7-ac6c-00155d7682cf}\\"},
           "windows": {"layerFolders": ["C:\\layers\\1"],
                       "resources": {"memory": {"limit": 1 << 30},
                                     "cpu": {"count": 2, "maximum": 5000}},
                       "hyperv": {"utilityVMPath": "C:\\uvm"}}}
    assert validate(cfg) == []


def _set(doc, path, value):
    *parents, last = path
    for p in parents:
        doc = doc[p]
    if value is DELETE:
        del doc[last]
    else:
        doc[last] = value


DELETE = object()

BAD = [
    (["ociVersion"], DELETE, "ociVersion: is required"),
    (["ociVersion"], 1.3, "ociVersion: must be a string"),
    (["ociVersion"], "one", "ociVersion: 'one' does not match"),
    (["root", "path"], DELETE, "root.path: is required"),
    (["root", "readonly"], "yes", "root.readonly: must be a boolean"),
    (["process", "user", "uid"], -1, "process.user.uid: must be >= 0"),
    (["process", "user", "uid"], "0", "process.user.uid: must be an integer"),
    (["process", "user", "gid"], 1 << 32, "process.user.gid: must be <= 4294967295"),
    (["process", "cwd"], DELETE, "process.cwd: is required"),
    (["process", "args"], "sh", "process.args: must be an array"),
    (["process", "env", 0], "NOEQUALS", "process.env[0]: 'NOEQUALS' does not match"),
    (["process", "rlimits", 0, "type"], "nofile",
     "process.rlimits[0].type: 'nofile' does not match"),
    (["process", "rlimits", 0, "soft"], DELETE, "process.rlimits[0].soft: is required"),
    (["process", "capabilities", "bounding", 1], "KILL",
     "process.capabilities.bounding[1]: 'KILL' does not match"),
    (["process", "consoleSize"], {"height": 1}, "process.consoleSize.width: is required"),
    (["process", "oomScoreAdj"], 1001, "process.oomScoreAdj: must be <= 1000"),
    (["mounts", 2, "destination"], DELETE, "mounts[2].destination: is required"),
    (["mounts", 3, "options"], "ro", "mounts[3].options: must be an array"),
    (["hooks"], {"prestart": [{"args": []}]}, "hooks.prestart[0].path: is required"),
    (["hooks"], {"poststop": [{"path": "/x", "timeout": 0}]},
     "hooks.poststop[0].timeout: must be >= 1"),
    (["annotations"], {"a": 1}, "annotations.a: must be a string"),
    (["linux", "namespaces", 1, "type"], "net",
     "linux.namespaces[1].type: 'net' is not one of"),
    (["linux", "uidMappings"], [{"containerID": 0, "hostID": 1}],
     "linux.uidMappings[0].size: is required"),
    (["linux", "devices"], [{"path": "/dev/x", "type": "z"}],
     "linux.devices[0].type: 'z' is not one of c, b, u, p"),
    (["linux", "resources", "devices", 0, "access"], "rwx",
     "linux.resources.devices[0].access: 'rwx' does not match"),
    (["linux", "resources", "memory"], {"limit": "1G"},
     "linux.resources.memory.limit: must be an integer"),
    (["linux", "resources", "hugepageLimits"], [{"pageSize": "2M", "limit": 1}],
     "linux.resources.hugepageLimits[0].pageSize: '2M' does not match"),
    (["linux", "seccomp"], {"syscalls": []}, "linux.seccomp.defaultAction: is required"),
    (["linux", "seccomp"], {"defaultAction": "SCMP_ACT_NOPE"},
     "linux.seccomp.defaultAction: 'SCMP_ACT_NOPE' is not one of"),
    (["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": [], "action": "SCMP_ACT_ERRNO"}]},
     "linux.seccomp.syscalls[0].names: must have at least 1 item"),
    (["linux", "seccomp"], {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["x"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].index: must be <= 5"),
    (["linux", "sysctl"], {"net.x": 1}, "linux.sysctl.net.x: must be a string"),
    (["linux", "maskedPaths", 0], "proc/kcore",
     "linux.maskedPaths[0]: 'proc/kcore' does not match"),
    (["linux", "rootfsPropagation"], "everywhere",
     "linux.rootfsPropagation: 'everywhere' is not one of"),
    (["linux", "timeOffsets"], {"realtime": {"secs": 1}},
     "linux.timeOffsets: 'realtime' is not one of boottime, monotonic"),
    (["linux", "personality"], {"domain": "LINUX64"},
     "linux.personality.domain: 'LINUX64' is not one of"),
    (["windows"], {"layerFolders": []}, "windows.layerFolders: must have at least 1 item"),
    (["windows"], {"layerFolders": ["C:\\l"], "resources": {"cpu": {"maximum": 10001}}},
     "windows.resources.cpu.maximum: must be <= 10000"),
]


@pytest.mark.parametrize("path,value,expected", BAD, ids=[".".join(map(str, b[0])) + f"={b[1]!r}"
                                                          for b in BAD])
def test_bad_documents_name_the_path(path, value, expected):
    doc = copy.deepcopy(default_spec())
    _set(doc, path, value)
    errors = validate(doc)
    assert any(e.startswith(expected) for e in errors), errors
    assert len(errors) == 1, errors


def test_all_errors_reported_sorted():
    doc = default_spec()
    doc["process"]["user"]["uid"] = -1
    del doc["ociVersion"]
    doc["hostname"] = 7
    assert validate(doc) == ["hostname: must be a string", "ociVersion: is required",
                             "process.user.uid: must be >= 0"]


def test_not_an_object():
    assert validate([]) == ["must be an object"]


def test_json_path():
    assert json_path(["process", "rlimits", 0, "type"]) == "process.rlimits[0].type"
    assert json_path([]) == ""


def test_schema_is_not_imported_on_the_hot_path():
    code = (f"import sys; sys.path.insert(0, {REPO!r}); import ociruntime.config.schema; "
            "print('jsonschema' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_validate_bundle(tmp_path):
    from ociruntime.config.schema import validate_bundle
    assert validate_bundle(os.path.join(REPO, "bundles", "hello")) == []
    assert validate_bundle(str(tmp_path))[0].startswith("cannot read ")
    (tmp_path / "config.json").write_text('{"ociVersion": "1.3.0", "process": {"cwd": 1}}')
    assert validate_bundle(str(tmp_path)) == ["process.cwd: must be a string"]
    (tmp_path / "config.json").write_text("{")
    assert "invalid JSON" in validate_bundle(str(tmp_path))[0]
