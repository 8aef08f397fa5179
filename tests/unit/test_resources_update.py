"""Pure logic of ``update``/``events``: runc's value parsing (go-units sizes, Go durations),
the per-field flags, and the merge of an update into the saved resources."""
import pytest

from ociruntime.cli import cmd_resources as cr
from ociruntime.cli.commands import COMMANDS
from ociruntime.cli.parser import parse_flags
from ociruntime.errors import OciError
from ociruntime.linux.cgroups.update import KMEM_IGNORED, merge, normalize


@pytest.mark.parametrize("s,want", [
    ("100", 100), ("64m", 64 << 20), ("64M", 64 << 20), ("64MB", 64 << 20),
    ("64MiB", 64 << 20), ("1.5g", 3 << 29), ("512k", 512 << 10), ("2 GB", 2 << 30),
    ("10b", 10), ("1t", 1 << 40),
])
def test_ram_in_bytes(s, want):
    assert cr.ram_in_bytes(s) == want


@pytest.mark.parametrize("s", ["", "lots", "m", "1..5m", "-5m", "5x", ".5m"])
def test_ram_in_bytes_invalid(s):
    with pytest.raises(OciError, match=r"^invalid size: '"):
        cr.ram_in_bytes(s)


@pytest.mark.parametrize("s,want", [
    ("5s", 5.0), ("100ms", 0.1), ("1m30s", 90.0), ("1h", 3600.0), ("250us", 250e-6),
    ("0", 0.0), ("1.5s", 1.5), ("-1s", -1.0), ("0s", 0.0),
])
def test_go_duration(s, want):
    assert cr.go_duration(s) == pytest.approx(want)


@pytest.mark.parametrize("s,msg", [
    ("5", 'time: missing unit in duration "5"'), ("", 'time: invalid duration ""'),
    ("5d", 'time: unknown unit "d" in duration "5d"'), ("s", 'time: invalid duration "s"'),
])
def test_go_duration_invalid(s, msg):
    with pytest.raises(OciError) as e:
        cr.go_duration(s)
    assert str(e.value) == msg


def flags(*argv):
    v, pos, _ = parse_flags(COMMANDS["update"].flags, list(argv))
    return v


def test_flags_to_resources():
    r, w = cr.resources_from_flags(flags(
        "--memory", "1g", "--memory-swap", "-1", "--memory-reservation", "10m",
        "--cpu-shares", "100", "-cpu-quota", "-1", "--cpu-period", "100000", "--cpu-burst", "0",
        "--cpu-rt-runtime", "950", "--cpu-rt-period", "1000", "--cpuset-cpus", "0-1",
        "--cpuset-mems", "0", "--cpu-idle", "1", "--blkio-weight", "300",
        "--pids-limit", "-1", "--kernel-memory-tcp", "5m"))
    assert r == {"memory": {"limit": 1 << 30, "swap": -1, "reservation": 10 << 20},
                 "cpu": {"shares": 100, "quota": -1, "period": 100000, "burst": 0,
                         "realtimeRuntime": 950, "realtimePeriod": 1000, "cpus": "0-1",
                         "mems": "0", "idle": 1},
                 "blockIO": {"weight": 300}, "pids": {"limit": -1}}
    assert w == [KMEM_IGNORED]
    assert cr.resources_from_flags(flags()) == ({}, [])


def test_flag_errors():
    with pytest.raises(OciError, match=r'^invalid value for cpu-period: strconv.ParseUint: '
                                       r'parsing "-1": invalid syntax$'):
        cr.resources_from_flags(flags("--cpu-period", "-1"))
    with pytest.raises(OciError, match=r"^invalid value for memory-swap: invalid size: 'x'$"):
        cr.resources_from_flags(flags("--memory-swap", "x"))


def test_normalize_drops_zeros_and_nulls():
    assert normalize({"memory": {"limit": 0, "swap": None, "reservation": 5},
                      "cpu": {"shares": 0, "cpus": "", "burst": 0, "idle": 0},
                      "pids": {"limit": 0}, "blockIO": {"weight": 0}, "unified": None}) == \
        {"memory": {"reservation": 5}, "cpu": {"burst": 0, "idle": 0}}


def test_merge_keeps_saved_and_fills_dependencies():
    saved = {"memory": {"limit": 100, "swap": 200}, "cpu": {"quota": 5000, "period": 10000},
             "devices": [{"allow": False, "access": "rwm"}]}
    merged, todo, w = merge(saved, {"cpu": {"period": 20000}, "pids": {"limit": 5}}, "v1")
    assert todo == {"cpu": {"period": 20000, "quota": 5000}, "pids": {"limit": 5}}
    assert merged["cpu"] == {"quota": 5000, "period": 20000}
    assert merged["memory"] == saved["memory"] and merged["devices"] == saved["devices"]
    assert merged["pids"] == {"limit": 5} and w == []
    assert saved["cpu"] == {"quota": 5000, "period": 10000}    # not modified in place
    # v2 needs the memory limit to convert swap, and the old swap when the limit changes
    _, todo, _ = merge(saved, {"memory": {"swap": 300}}, "v2")
    assert todo == {"memory": {"swap": 300, "limit": 100}}
    _, todo, _ = merge(saved, {"memory": {"limit": 150}}, "v2")
    assert todo == {"memory": {"limit": 150, "swap": 200}}
    _, todo, _ = merge(saved, {"memory": {"limit": 150}}, "v1")
    assert todo == {"memory": {"limit": 150}}
    _, todo, _ = merge(saved, {"memory": {"limit": -1}}, "v2")
    assert todo == {"memory": {"limit": -1}}


def test_merge_drops_kernel_memory_with_runc_warning():
    merged, todo, w = merge(None, {"memory": {"kernel": 1 << 20, "kernelTCP": 1 << 20}})
    assert todo == {} and merged == {"memory": {}} and w == [KMEM_IGNORED]
