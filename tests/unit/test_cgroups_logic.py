"""Pure logic of ociruntime.linux.cgroups: config parsing, runc's v1->v2 conversions, the
device rule semantics, and the generated BPF device program (run here by a tiny interpreter
of the instructions it uses, against the same semantics)."""
import itertools

import pytest

from ociruntime.config.reader import Obj
from ociruntime.errors import ConfigError, Unsupported
from ociruntime.linux import cgroups
from ociruntime.linux.cgroups import devices as dv
from ociruntime.linux.cgroups import fs
from ociruntime.linux.cgroups.resources import DeviceRule
from ociruntime.linux.cgroups.v2 import blkio_weight_to_io_weight, shares_to_weight, swap_to_v2


def parse(d):
    return cgroups.parse_resources(Obj(d, "linux.resources"))


def test_parse_full():
    r = parse({
        "memory": {"limit": 1 << 20, "reservation": 1, "swap": 2 << 20, "kernel": 5,
                   "kernelTCP": 6, "swappiness": 30, "disableOOMKiller": False,
                   "useHierarchy": True, "checkBeforeUpdate": True},
        "cpu": {"shares": 1024, "quota": 1000, "burst": 10, "period": 100000,
                "realtimeRuntime": 5, "realtimePeriod": 6, "cpus": "0-1", "mems": "0", "idle": 1},
        "pids": {"limit": 10},
        "blockIO": {"weight": 10, "leafWeight": 1000,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 100}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 7}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
        "network": {"classID": 5, "priorities": [{"name": "eth0", "priority": 3}]},
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 1000}},
        "unified": {"memory.high": "max", "cgroup.max.depth": "3"},
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
    })
    assert r.memory.limit == 1 << 20 and r.memory.disable_oom_killer is False
    assert r.memory.use_hierarchy is True and r.memory.check_before_update is True
    assert r.cpu.shares == 1024 and r.cpu.cpus == "0-1" and r.cpu.idle == 1
    assert r.pids == 10
    assert r.block_io.weight_device[0].weight == 500
    assert r.block_io.throttle_write_iops[0].rate == 7
    assert r.hugepage_limits == [("2MB", 4 << 20)]
    assert r.network.priorities == [("eth0", 3)]
    assert r.rdma == {"mlx5_1": (3, 1000)}
    assert r.unified["cgroup.max.depth"] == "3"
    assert r.devices == [DeviceRule(allow=False, type="a", major=None, minor=None, access="rwm"),
                         DeviceRule(allow=True, type="c", major=10, minor=229, access="rw")]


def test_parse_empty_means_unset():
    r = parse({})
    assert r.memory is None and r.cpu is None and r.pids is None and r.devices is None
    assert parse({"memory": {}}).memory.limit is None


@pytest.mark.parametrize("d, path", [
    ({"memory": {"limit": "1g"}}, "linux.resources.memory.limit"),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness"),
    ({"cpu": {"shares": -1}}, "linux.resources.cpu.shares"),
    ({"cpu": {"idle": 2}}, "linux.resources.cpu.idle"),
    ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight"),
    ({"blockIO": {"weightDevice": [{"major": 1}]}}, "linux.resources.blockIO.weightDevice[0].minor"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 1, "minor": 2, "rate": -1}]}},
     "linux.resources.blockIO.throttleReadBpsDevice[0].rate"),
    ({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]}, "linux.resources.hugepageLimits[0].pageSize"),
    ({"devices": [{"allow": True, "type": "x"}]}, "linux.resources.devices[0].type"),
    ({"devices": [{"allow": True, "access": "rwx"}]}, "linux.resources.devices[0].access"),
    ({"devices": [{"type": "c"}]}, "linux.resources.devices[0].allow"),
    ({"unified": {"../x": "1"}}, "linux.resources.unified.../x"),
    ({"unified": {"memory.max": 5}}, "linux.resources.unified.memory.max"),
    ({"rdma": {"mlx": {"hcaHandles": -1}}}, "linux.resources.rdma.mlx.hcaHandles"),
])
def test_parse_errors_name_the_field(d, path):
    with pytest.raises(ConfigError) as e:
        parse(d)
    assert e.value.field == path, str(e.value)


def test_runc_conversions():
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(262144) == 10000
    assert shares_to_weight(0) == 0
    assert blkio_weight_to_io_weight(10) == 1
    assert blkio_weight_to_io_weight(500) == 4950
    assert blkio_weight_to_io_weight(1000) == 10000
    assert swap_to_v2(None, -1) == -1          # unlimited memory, swap unset: both unlimited
    assert swap_to_v2(0, 100) is None
    assert swap_to_v2(-1, 100) == -1
    assert swap_to_v2(300, 100) == 200
    with pytest.raises(ConfigError, match="without memory limit"):
        swap_to_v2(300, None)
    with pytest.raises(ConfigError, match=">= memory limit"):
        swap_to_v2(50, 100)


def test_join_paths():
    j = fs.join
    assert j("/sys/fs/cgroup/memory", "/", "/a/b", "/x/y") == "/sys/fs/cgroup/memory/x/y"
    assert j("/sys/fs/cgroup/memory", "/", "/a/b", "x/y") == "/sys/fs/cgroup/memory/a/b/x/y"
    assert j("/sys/fs/cgroup", "/", "/", "x") == "/sys/fs/cgroup/x"
    assert j("/sys/fs/cgroup", "/", "/", "/x/../../y") == "/sys/fs/cgroup/y"
    # mount root != / (e.g. in a cgroup namespace): own path is relative to it
    assert j("/sys/fs/cgroup", "/kube/pod", "/kube/pod/c", "x") == "/sys/fs/cgroup/c/x"


def test_systemd_seam():
    with pytest.raises(Unsupported, match="systemd cgroup driver is not supported"):
        cgroups.manager_for("system.slice:a:b", "b", systemd=True)


def test_from_state_is_pure():
    m = cgroups.from_state({"mode": "hybrid", "paths": {"memory": "/x/m", "": "/x/u"}})
    assert m.mode == "hybrid" and m.path == "/x/m" and m.cgroupns_path() == "/x/u"
    m2 = cgroups.from_state({"mode": "v2", "path": "/sys/fs/cgroup/ocirun/a"})
    assert m2.path == "/sys/fs/cgroup/ocirun/a" and m2.to_state() == {"mode": "v2",
                                                                      "path": m2.path}


# ------------------------------------------------------------------ device rules

def R(allow, t="c", ma=None, mi=None, acc="rwm"):
    return DeviceRule(allow=allow, type=t, major=ma, minor=mi, access=acc)


def test_normalize_like_the_kernel():
    assert dv.normalize([]) == (True, [])
    assert dv.normalize([dv.DENY_ALL]) == (False, [])
    assert dv.normalize([dv.DENY_ALL, R(True, ma=1, mi=3, acc="r"), R(True, ma=1, mi=3, acc="w")]) \
        == (False, [("c", 1, 3, "rw")])
    # a deny in default-deny mode removes bits from the exception
    assert dv.normalize([dv.DENY_ALL, R(True, ma=1, mi=3), R(False, ma=1, mi=3, acc="w")]) \
        == (False, [("c", 1, 3, "rm")])
    assert dv.normalize([dv.DENY_ALL, R(True, ma=1, mi=3), R(False, ma=1, mi=3)]) == (False, [])
    # allow-all resets
    assert dv.normalize([dv.DENY_ALL, R(True, ma=1, mi=3), R(True, t="a")]) == (True, [])
    assert dv.normalize([R(True, t="a"), R(False, t="b", ma=8)]) == (True, [("b", 8, None, "rwm")])


def test_effective_rules_order_like_runc():
    class D:
        def __init__(self, path):
            self.path = path
    assert dv.overridden_defaults([D("/dev/kmsg"), D("/dev/zero")]) == ["/dev/zero"]
    rules = dv.effective_rules([R(False, ma=1, mi=3)])
    assert rules[0] == dv.DENY_ALL
    assert rules[1] == R(False, ma=1, mi=3)
    assert rules[2:] == [r for _, r in dv.DEFAULT_RULES]
    # a default redefined in linux.devices is dropped (runc's createDevices)
    dropped = dv.effective_rules([], ["/dev/zero"])
    assert R(True, ma=1, mi=5) not in dropped and len(dropped) == len(rules) - 2
    # runc's defaults come after the config's rules: /dev/null stays usable
    default_allow, exc = dv.normalize(rules)
    assert not default_allow and ("c", 1, 3, "rwm") in exc
    assert dv.v1_writes([dv.DENY_ALL, R(True, ma=136)]) == [("devices.deny", "a"),
                                                           ("devices.allow", "c 136:* rwm")]
    assert dv.v1_writes([R(True, t="a"), R(False, t="b", ma=8, mi=0, acc="w")]) == [
        ("devices.allow", "a"), ("devices.deny", "b 8:0 w")]


def run_bpf(prog, access_type, major, minor):
    """Interpret the subset of eBPF the generator emits."""
    ins = [(prog[i], prog[i + 1] & 0xf, prog[i + 1] >> 4,
            int.from_bytes(prog[i + 2:i + 4], "little", signed=True),
            int.from_bytes(prog[i + 4:i + 8], "little", signed=True))
           for i in range(0, len(prog), 8)]
    reg = [0] * 11
    ctx = [access_type, major, minor]
    pc = 0
    m32 = 0xffffffff
    for _ in range(10000):
        code, dst, src, off, imm = ins[pc]
        pc += 1
        if code == 0x61:
            reg[dst] = ctx[off // 4]
        elif code == 0xbc:
            reg[dst] = reg[src] & m32
        elif code == 0x54:
            reg[dst] = reg[dst] & imm & m32
        elif code == 0x74:
            reg[dst] = (reg[dst] & m32) >> imm
        elif code == 0x55:
            if reg[dst] != imm:
                pc += off
        elif code == 0x15:
            if reg[dst] == imm:
                pc += off
        elif code == 0xb7:
            reg[dst] = imm
        elif code == 0x95:
            return reg[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("no exit")


def kernel_v1_allows(rules, typ, major, minor, acc):
    """The v1 device cgroup's decision for the normalized state."""
    default_allow, exc = dv.normalize(rules)
    for t, ma, mi, a in exc:
        if t == typ and (ma is None or ma == major) and (mi is None or mi == minor):
            if default_allow and set(acc) & set(a):
                return False
            if not default_allow and set(acc) <= set(a):
                return True
    return default_allow


RULESETS = [
    dv.effective_rules(None),
    dv.effective_rules([R(False, ma=1, mi=3, acc="w")]),
    [dv.DENY_ALL, R(True, ma=1, mi=5, acc="r"), R(True, "b", 8, None, "rw")],
    [R(True, t="a"), R(False, ma=1, mi=3, acc="w"), R(False, "b", None, None, "m")],
    [dv.DENY_ALL, R(True, ma=1, mi=3), R(True, t="a")],
    [dv.DENY_ALL],
]


@pytest.mark.parametrize("rules", RULESETS)
def test_bpf_program_matches_v1_semantics(rules):
    prog = dv.program(rules)
    assert len(prog) % 8 == 0
    accs = ["r", "w", "m", "rw", "rwm"]
    for typ, (ma, mi), acc in itertools.product("cb", [(1, 3), (1, 5), (8, 0), (136, 7), (5, 2)],
                                               accs):
        at = (sum({"m": 1, "r": 2, "w": 4}[c] for c in acc) << 16) | {"b": 1, "c": 2}[typ]
        want = kernel_v1_allows(rules, typ, ma, mi, acc)
        assert run_bpf(prog, at, ma, mi) == int(want), (typ, ma, mi, acc)


def test_v1_update_writes_diff():
    cur = "c 1:3 rwm\nc 136:* rwm\nc 1:11 rw\n"
    rules = [dv.DENY_ALL, R(True, ma=1, mi=3), R(True, ma=136), R(True, ma=1, mi=11, acc="r"),
             R(True, "b", 8, 0, "r")]
    assert dv.v1_update_writes(cur, rules) == [("devices.allow", "b 8:0 r"),
                                               ("devices.deny", "c 1:11 w")]
    assert dv.v1_update_writes("a *:* rwm\n", rules) is None
    assert dv.v1_update_writes(cur, [R(True, t="a")]) is None
    assert dv.v1_update_writes(cur, [dv.DENY_ALL]) == [("devices.deny", "c 1:3 rwm"),
                                                       ("devices.deny", "c 136:* rwm"),
                                                       ("devices.deny", "c 1:11 rw")]


def test_freeze_timeout_thaws_and_reports():
    class Stuck(fs.Manager):
        path = "/sys/fs/cgroup/freezer/x"
        freeze_tries = 3
        thawed = False

        def thaw(self):
            self.thawed = True
    m = Stuck()
    with pytest.raises(fs.CgroupError, match=r"unable to freeze the cgroup .*/x: still FREEZING"):
        m.freeze_wait(lambda: "FREEZING", "FROZEN", "freeze")
    assert m.thawed
    m.freeze_wait(lambda: "FROZEN", "FROZEN", "freeze")
