"""Which sysctls a container may set (runc's rules), and the procfs check before writing."""
import os

import pytest

from ociruntime.errors import ConfigError, SetupError
from ociruntime.linux import sysctl


class NS:
    def __init__(self, type, path=None):
        self.type, self.path = type, path


ALL = [NS("ipc"), NS("network"), NS("uts"), NS("mount"), NS("pid")]


@pytest.mark.parametrize("key", ["kernel.msgmax", "kernel.shmmax", "kernel.sem",
                                 "kernel.shm_rmid_forced", "fs.mqueue.msg_max",
                                 "net.ipv4.ip_forward", "net/ipv4/conf/eth0.100/forwarding",
                                 "kernel.hostname", "kernel.domainname"])
def test_namespaced_sysctls_allowed(key):
    sysctl.validate({key: "1"}, ALL)


@pytest.mark.parametrize("key,ns", [("kernel.shmmax", "ipc"), ("fs.mqueue.msg_max", "ipc"),
                                    ("net.ipv4.ip_forward", "network"),
                                    ("kernel.hostname", "uts")])
def test_needs_its_namespace(key, ns):
    others = [n for n in ALL if n.type != ns]
    with pytest.raises(ConfigError, match=rf"^linux.sysctl.{key}: .*{ns} namespace"):
        sysctl.validate({key: "1"}, others)


@pytest.mark.parametrize("key", ["kernel.core_pattern", "vm.overcommit_memory",
                                 "kernel.modprobe", "fs.file-max", "kernel.msg", "kernel"])
def test_not_namespaced_rejected(key):
    with pytest.raises(ConfigError, match="not in a separate kernel namespace"):
        sysctl.validate({key: "1"}, ALL)


def test_net_sysctl_in_host_netns_rejected():
    with pytest.raises(ConfigError, match="host network namespace"):
        sysctl.validate({"net.ipv4.ip_forward": "1"},
                        [NS("network", "/proc/self/ns/net"), NS("ipc")])


def test_dotdot_rejected():
    with pytest.raises(ConfigError, match="invalid sysctl name"):
        sysctl.validate({"net/../../kernel/core_pattern": "x"}, ALL)


def test_key_path():
    assert sysctl.key_path("kernel.shmmax") == "kernel/shmmax"
    assert sysctl.key_path("net/ipv4/conf/eth0.100/forwarding") == \
        "net/ipv4/conf/eth0.100/forwarding"


def test_apply_refuses_a_directory_that_is_not_procfs(tmp_path):
    # a fake "procfs" with a writable sys/kernel/shmmax (CVE-2019-16884 family)
    (tmp_path / "sys" / "kernel").mkdir(parents=True)
    fake = tmp_path / "sys" / "kernel" / "shmmax"
    fake.write_text("orig")
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(SetupError, match="is not on procfs"):
            sysctl.apply({"kernel.shmmax": "1"}, fd)
    finally:
        os.close(fd)
    assert fake.read_text() == "orig"
    with pytest.raises(SetupError, match="is not on procfs"):
        sysctl.open_proc(str(tmp_path))


def test_open_proc_accepts_real_procfs():
    fd = sysctl.open_proc("/proc")
    os.close(fd)
