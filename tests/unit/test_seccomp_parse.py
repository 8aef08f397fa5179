"""linux.seccomp parsing: typed profile, errors that name the JSON path, no libseccomp."""
import pytest

from ociruntime.config.reader import Obj
from ociruntime.errors import ConfigError, Unsupported
from ociruntime.linux import seccomp


def parse(d):
    return seccomp.parse(Obj(d, "linux.seccomp"))


def err(d, exc=ConfigError):
    with pytest.raises(exc) as e:
        parse(d)
    return str(e.value)


def test_full_profile():
    p = parse({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 0xF0, "valueTwo": 0x30, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": None},
            {"names": ["ptrace"], "action": "SCMP_ACT_TRACE"},
            {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS"},
        ]})
    assert p.default_action == 0x00050000 | 38
    assert p.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert p.flags == 2 | 4
    r = p.syscalls
    assert [x.names for x in r] == [["read", "write"], ["personality"], ["mkdir"], ["ptrace"],
                                    ["kill"]]
    assert r[0].action == 0x7FFF0000 and r[0].args == []
    assert [a.key() for a in r[1].args] == [(0, 8, 0, 4), (1, 0xF0, 0x30, 7)]
    assert r[2].action == 0x00050000 | 13 and r[2].where == "linux.seccomp.syscalls[2]"
    assert r[3].action == 0x7FF00000 | 1          # TRACE's errno defaults to EPERM too
    assert r[4].action == 0x80000000


@pytest.mark.parametrize("name,value", [
    ("SCMP_ACT_KILL", 0), ("SCMP_ACT_KILL_THREAD", 0), ("SCMP_ACT_KILL_PROCESS", 0x80000000),
    ("SCMP_ACT_TRAP", 0x30000), ("SCMP_ACT_ERRNO", 0x50001), ("SCMP_ACT_TRACE", 0x7FF00001),
    ("SCMP_ACT_ALLOW", 0x7FFF0000), ("SCMP_ACT_LOG", 0x7FFC0000)])
def test_actions(name, value):
    assert parse({"defaultAction": name}).default_action == value


@pytest.mark.parametrize("d,msg", [
    ({}, "linux.seccomp.defaultAction: is required"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, 'linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1},
     "linux.seccomp.defaultErrnoRet: is not allowed with action SCMP_ACT_ALLOW"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1},
     "linux.seccomp.defaultErrnoRet: must be >= 0"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000},
     "linux.seccomp.defaultErrnoRet: must be <= 65535"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]},
     'linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_Z80"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]},
     'linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NOPE"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]},
     "linux.seccomp.syscalls[0].names: is required"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]},
     "linux.seccomp.syscalls[0].names: must not be empty"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a", 3], "action": "SCMP_ACT_ERRNO"}]},
     "linux.seccomp.syscalls[0].names[1]: must be a string"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["read"]},
        {"names": ["x"], "action": "SCMP_ACT_ALLOW"}, {"names": ["y"], "action": "X"}]},
     "linux.seccomp.syscalls[1].action: is required"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["read"], "action": "SCMP_ACT_LOG"},
        {"names": ["x"], "action": "SCMP_ACT_ALLOW"}, {"names": ["y"], "action": "X"}]},
     'linux.seccomp.syscalls[3].action: unknown action "X"'),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]},
     "linux.seccomp.syscalls[0].errnoRet: is not allowed with action SCMP_ACT_ALLOW"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].index: must be <= 5"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].index: is required"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1}]}]},
     "linux.seccomp.syscalls[0].args[0].op: is required"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "op": "SCMP_CMP_EQ"}, {"index": 1, "op": "SCMP_CMP_APPROX"}]}]},
     'linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_APPROX"'),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].value: must be >= 0"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "valueTwo": 1 << 64, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].valueTwo: must be <= 18446744073709551615"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": ["read"]},
     "linux.seccomp.syscalls[0]: must be an object"),
])
def test_errors_name_the_path(d, msg):
    assert err(d) == msg


def test_notify_is_refused_clearly():
    assert err({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]}, Unsupported) == (
        "linux.seccomp.syscalls[1].action: SCMP_ACT_NOTIFY is not supported by ocirun "
        "(no seccomp notify agent support)")
    assert err({"defaultAction": "SCMP_ACT_NOTIFY"}, Unsupported).startswith(
        "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY is not supported")
    assert err({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"},
               Unsupported).startswith("linux.seccomp.listenerPath: ")


def test_unknown_syscall_names_parse():
    # resolved (and skipped when unknown) at compile time, as runc does
    p = parse({"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["not_a_syscall"], "action": "SCMP_ACT_ERRNO"}]})
    assert p.syscalls[0].names == ["not_a_syscall"]


def test_canonical_is_stable_and_ignores_cosmetics():
    a = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "comment": "x"}]}
    b = {"syscalls": [{"action": "SCMP_ACT_ALLOW", "names": ["read"]}],
         "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1}
    assert parse(a).canonical() == parse(b).canonical()
    c = dict(b, defaultErrnoRet=2)
    assert parse(a).canonical() != parse(c).canonical()


def parse_notify(d):
    return seccomp.parse(Obj(d, "linux.seccomp"), allow_notify=True)


def test_notify_when_allowed():
    p = parse_notify({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
                      "listenerMetadata": "m=1",
                      "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                      "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]})
    assert p.uses_notify and p.syscalls[0].action == 0x7FC00000
    assert (p.listener_path, p.listener_metadata) == ("/run/agent.sock", "m=1")
    assert not parse_notify({"defaultAction": "SCMP_ACT_ALLOW"}).uses_notify


@pytest.mark.parametrize("d,msg", [
    ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"},
     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]},
     "linux.seccomp.listenerPath: is required when a rule uses SCMP_ACT_NOTIFY"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "agent.sock", "syscalls": [
        {"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]},
     "linux.seccomp.listenerPath: must be an absolute path"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a", "syscalls": [
        {"names": ["mount"], "action": "SCMP_ACT_NOTIFY", "errnoRet": 1}]},
     "linux.seccomp.syscalls[0].errnoRet: is not allowed with action SCMP_ACT_NOTIFY"),
])
def test_notify_errors(d, msg):
    with pytest.raises(ConfigError) as e:
        parse_notify(d)
    assert str(e.value) == msg


def test_default_cache_dir_is_outside_the_default_state_root():
    """A directory under --root is listed as a container: the cache must live elsewhere."""
    import os
    from ociruntime.linux.seccomp import DEFAULT_CACHE_DIR
    from ociruntime.state import DEFAULT_ROOT
    assert not os.path.abspath(DEFAULT_CACHE_DIR).startswith(DEFAULT_ROOT.rstrip("/") + "/")
