"""seccomp enforced for real: each case forks a child that sets no_new_privs, loads the
compiled filter and tries syscalls; the parent checks what the kernel did."""
import ctypes
import errno
import os
import signal
import stat
import subprocess

import pytest

from ociruntime.config.reader import Obj
from ociruntime.errors import SetupError
from ociruntime.linux import seccomp
from ociruntime.linux import syscalls as sc
from seccomp_profiles import PODMAN_PROFILE, podman_oci_seccomp

NR_LSEEK = 8
BUSYBOX = "/bin/busybox"


@pytest.fixture(autouse=True)
def _root():
    if os.geteuid() != 0:
        pytest.skip("needs root")


def compile_profile(d, cache_dir=None):
    return seccomp.parse(Obj(d, "linux.seccomp")).prepare(cache_dir)


def in_filtered_child(prepared, fn):
    """Fork; the child sets NNP, loads ``prepared`` and runs ``fn()``; its repr() comes back.
    Returns (wait status, result text or None)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            import resource
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGSYS would dump core
            sc.set_no_new_privs()
            seccomp.load(prepared)
            out = repr(fn()).encode()
            os.write(w, out)
        except BaseException as e:  # report anything to the parent
            try:
                os.write(w, f"EXC {e!r}".encode())
            except BaseException:
                pass
            code = 99
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return status, b"".join(chunks).decode() or None


def raw_lseek(fd, off, whence=0):
    """lseek(2) through syscall(2), so no libc or Python check sits between; -errno or result."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(ctypes.c_long(NR_LSEEK), ctypes.c_long(fd), ctypes.c_long(off),
                     ctypes.c_long(whence))
    return -ctypes.get_errno() if r == -1 else r


def errno_of(fn, *a):
    try:
        fn(*a)
        return 0
    except OSError as e:
        return e.errno


def test_errno_rule_denies_and_others_pass(tmp_path):
    p = compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat", "no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO",
         "errnoRet": errno.ENOMEDIUM}]})
    assert p.skipped == ["no_such_syscall_xyz"]
    d = str(tmp_path / "d")

    status, out = in_filtered_child(p, lambda: (errno_of(os.mkdir, d), os.uname().sysname))
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert out == repr((errno.ENOMEDIUM, "Linux"))
    assert not os.path.exists(d)
    # the same syscall unfiltered works: the denial came from the filter
    assert errno_of(os.mkdir, d) == 0


def test_errno_default_is_eperm(tmp_path):
    p = compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})
    status, out = in_filtered_child(p, lambda: errno_of(os.mkdir, str(tmp_path / "d")))
    assert out == repr(errno.EPERM)


# what a Python child needs between loading and reporting back
_PY_MIN = ["read", "write", "close", "exit", "exit_group", "rt_sigreturn", "rt_sigprocmask",
           "rt_sigaction", "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "futex",
           "getpid", "gettid", "newfstatat", "fstat", "lseek", "getrandom"]


def test_default_errno_ret(tmp_path):
    p = compile_profile({"defaultAction": "SCMP_ACT_ERRNO",
                         "defaultErrnoRet": errno.EOPNOTSUPP, "syscalls": [
                             {"names": _PY_MIN, "action": "SCMP_ACT_ALLOW"}]})
    status, out = in_filtered_child(
        p, lambda: (errno_of(os.mkdir, str(tmp_path / "d")), errno_of(os.uname),
                    os.getpid() > 0))
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert out == repr((errno.EOPNOTSUPP, errno.EOPNOTSUPP, True))


MARK = errno.EBADFD  # what a matching rule returns; an unmatched lseek(-1, …) gives EBADF


@pytest.mark.parametrize("op,value,value_two,hit,miss", [
    ("SCMP_CMP_NE", 5, 0, 6, 5),
    ("SCMP_CMP_LT", 5, 0, 4, 5),
    ("SCMP_CMP_LE", 5, 0, 5, 6),
    ("SCMP_CMP_EQ", 5, 0, 5, 4),
    ("SCMP_CMP_GE", 5, 0, 5, 4),
    ("SCMP_CMP_GT", 5, 0, 6, 5),
    ("SCMP_CMP_MASKED_EQ", 0xF0, 0x30, 0x35, 0x45),
    ("SCMP_CMP_EQ", 1 << 40, 0, 1 << 40, 1 << 8),   # the high 32 bits are compared too
])
def test_arg_operators(op, value, value_two, hit, miss):
    p = compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": MARK,
         "args": [{"index": 1, "value": value, "valueTwo": value_two, "op": op}]}]})
    status, out = in_filtered_child(p, lambda: (raw_lseek(-1, hit), raw_lseek(-1, miss)))
    assert out == repr((-MARK, -errno.EBADF)), (op, out)


def test_args_on_two_indexes_are_and_same_index_is_or():
    p = compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": MARK,
         "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_EQ"},
                  {"index": 2, "value": 1, "op": "SCMP_CMP_EQ"}]},
        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOKEY,
         "args": [{"index": 1, "value": 7, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}]})
    status, out = in_filtered_child(p, lambda: (
        raw_lseek(-1, 5, 1), raw_lseek(-1, 5, 0), raw_lseek(-1, 4, 1),
        raw_lseek(-1, 7, 0), raw_lseek(-1, 9, 0), raw_lseek(-1, 8, 0)))
    assert out == repr((-MARK, -errno.EBADF, -errno.EBADF,
                        -errno.ENOKEY, -errno.ENOKEY, -errno.EBADF))


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD",
                                    "SCMP_ACT_KILL_PROCESS"])
def test_kill_actions_kill_with_sigsys(tmp_path, action):
    p = compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": action}]})
    status, out = in_filtered_child(p, lambda: os.mkdir(str(tmp_path / "d")))
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS, (status, out)
    assert out is None
    assert not os.path.exists(tmp_path / "d")


def test_trap_sends_sigsys_to_a_handler(tmp_path):
    p = compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["lseek"], "action": "SCMP_ACT_TRAP"}]})

    def child():
        got = []
        signal.signal(signal.SIGSYS, lambda *a: got.append("SIGSYS"))
        raw_lseek(-1, 0)
        for _ in range(100):
            if got:
                break
        return got

    status, out = in_filtered_child(p, child)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert out == repr(["SIGSYS"])


def test_trace_without_tracer_is_enosys_and_log_allows(tmp_path):
    p = compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["lseek"], "action": "SCMP_ACT_TRACE"},
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_LOG"}]})
    d = str(tmp_path / "logged")
    status, out = in_filtered_child(p, lambda: (raw_lseek(-1, 0), errno_of(os.mkdir, d)))
    assert out == repr((-errno.ENOSYS, 0))
    assert os.path.isdir(d)


def test_filter_flags_load():
    p = compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "flags": [
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": MARK}]})
    assert p.flags == 1 | 2 | 4

    def child():
        with open("/proc/self/status") as f:
            st = dict(line.split(":", 1) for line in f)
        return raw_lseek(-1, 0), st["Seccomp"].strip()

    status, out = in_filtered_child(p, child)
    assert out == repr((-MARK, "2"))


def test_load_without_nnp_or_cap_fails_cleanly():
    p = compile_profile({"defaultAction": "SCMP_ACT_ALLOW"})
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            # drop CAP_SYS_ADMIN from the effective set; no NNP: the kernel says EACCES
            eff, perm, inh = sc.capget()
            sc.capset(eff & ~(1 << 21), perm, inh)
            try:
                seccomp.load(p)
                os.write(w, b"loaded")
            except SetupError as e:
                os.write(w, str(e).encode())
        finally:
            os._exit(0)
    os.close(w)
    out = os.read(r, 1000).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert out == "seccomp: loading the filter: Permission denied"


def test_load_without_nnp_needs_cap_sys_admin_and_has_it_as_root():
    """Without no_new_privs, loading is a privileged operation: the init must load before it
    drops CAP_SYS_ADMIN (runc does the same); with it, loading works."""
    p = compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": MARK}]})
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            with open("/proc/self/status") as f:
                nnp = [x.split()[1] for x in f if x.startswith("NoNewPrivs:")]
            seccomp.load(p)
            os.write(w, repr((nnp, raw_lseek(-1, 0))).encode())
        finally:
            os._exit(0)
    os.close(w)
    out = os.read(r, 1000).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert out == repr((["0"], -MARK))


# ---------------------------------------------------------------- podman's default profile

@pytest.fixture
def podman_profile():
    if not os.path.exists(PODMAN_PROFILE):
        pytest.fail(f"{PODMAN_PROFILE} missing: run hack/setup.d/20-seccomp.sh")
    return podman_oci_seccomp()


def exec_filtered(prepared, argv):
    """Fork, NNP, load, execve ``argv``; (exit code, combined output)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(w, 1)
            os.dup2(w, 2)
            sc.set_no_new_privs()
            seccomp.load(prepared)
            os.execve(argv[0], argv, {"PATH": "/bin:/usr/bin"})
        finally:
            os._exit(127)
    os.close(w)
    out = b""
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        out += b
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_podman_default_profile_runs_busybox(podman_profile, tmp_path):
    if not os.path.exists(BUSYBOX):
        pytest.fail(f"{BUSYBOX} missing (busybox-static, installed by hack/setup.sh)")
    p = compile_profile(podman_profile)
    assert p.instructions > 500
    script = (f"set -e; cd {tmp_path}; mkdir d; echo hello > d/f; cat d/f; ls d; "
              "uname -s; id -u; ps >/dev/null; sleep 0; sh -c 'exit 0'; "
              "grep ^Seccomp: /proc/self/status; echo done")
    code, out = exec_filtered(p, [BUSYBOX, "sh", "-c", script])
    assert code == 0, out
    assert out.split() == ["hello", "f", "Linux", "0", "Seccomp:", "2", "done"], out


def raw_syscall(nr, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return -ctypes.get_errno() if r == -1 else r


NR_ADD_KEY, NR_USELIB = 248, 134


def test_podman_profile_denies_with_its_errnos(podman_profile):
    """add_key is listed nowhere: the default ERRNO(ENOSYS); uselib has a rule: ERRNO(EPERM)."""
    p = compile_profile(podman_profile)
    unfiltered = raw_syscall(NR_ADD_KEY, 0, 0, 0, 0, 0)
    assert unfiltered not in (-errno.ENOSYS, -errno.EPERM)
    status, out = in_filtered_child(p, lambda: (raw_syscall(NR_ADD_KEY, 0, 0, 0, 0, 0),
                                                raw_syscall(NR_USELIB, 0)))
    assert out == repr((-errno.ENOSYS, -errno.EPERM))


# ---------------------------------------------------------------- cache

def test_cache_miss_hit_and_file_mode(tmp_path, podman_profile):
    cache = str(tmp_path / "cache")
    prof = seccomp.parse(Obj(podman_profile, "linux.seccomp"))
    a = prof.prepare(cache)
    assert not a.cached
    path = os.path.join(cache, a.key + ".bpf")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    assert os.listdir(cache) == [a.key + ".bpf"]  # no temp file left
    b = prof.prepare(cache)
    assert b.cached and b.bpf == a.bpf and b.key == a.key
    # a different profile is a different key
    c = compile_profile({"defaultAction": "SCMP_ACT_ALLOW"}, cache)
    assert not c.cached and c.key != a.key and c.bpf != a.bpf


def _corrupt(path, how):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if how == "flip":
        data[-3] ^= 0xFF        # one byte of the last instruction
    elif how == "truncate":
        data = data[:-8]        # still a whole number of instructions
    elif how == "key":
        i = data.index(b"\n") + 1
        data[i] = ord("0") if data[i] != ord("0") else ord("1")
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("how", ["flip", "truncate", "key", "mode", "empty"])
def test_cache_tampered_is_recompiled(tmp_path, how):
    cache = str(tmp_path / "cache")
    d = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": MARK}]}
    good = compile_profile(d, cache)
    path = os.path.join(cache, good.key + ".bpf")
    if how == "mode":
        os.chmod(path, 0o644)
    elif how == "empty":
        open(path, "wb").close()
    else:
        _corrupt(path, how)
    again = compile_profile(d, cache)
    assert not again.cached and again.bpf == good.bpf
    # the bad file was replaced by a verified one
    third = compile_profile(d, cache)
    assert third.cached and third.bpf == good.bpf
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    status, out = in_filtered_child(third, lambda: errno_of(os.mkdir, str(tmp_path / "x")))
    assert out == repr(MARK)


def test_cache_in_untrusted_dir_is_not_used(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.chmod(cache, 0o777)  # writable by anyone: neither read nor written
    p = compile_profile({"defaultAction": "SCMP_ACT_ALLOW"}, str(cache))
    assert not p.cached and os.listdir(cache) == []
    link = tmp_path / "link"
    os.chmod(cache, 0o700)
    os.symlink(cache, link)
    p = compile_profile({"defaultAction": "SCMP_ACT_ALLOW"}, str(link))
    assert not p.cached and os.listdir(cache) == []


def test_cache_key_covers_errno_and_args():
    base = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}]}]}
    import copy
    keys = set()
    for change in (lambda d: None,
                   lambda d: d["syscalls"][0].update(errnoRet=2),
                   lambda d: d["syscalls"][0]["args"][0].update(value=6),
                   lambda d: d["syscalls"][0]["args"][0].update(op="SCMP_CMP_NE"),
                   lambda d: d.update(architectures=["SCMP_ARCH_X86"])):
        x = copy.deepcopy(base)
        change(x)
        keys.add(seccomp.cache_key(seccomp.parse(Obj(x, "linux.seccomp"))))
    assert len(keys) == 5


# ---------------------------------------------------------------- features

def test_features_are_truthful():
    f = seccomp.features()
    assert f["enabled"] is True
    assert "SCMP_ACT_NOTIFY" not in f["actions"]   # refused by parse
    assert {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"} <= set(f["actions"])
    assert "SCMP_ARCH_X86_64" in f["archs"]
    assert set(f["supportedFlags"]) <= set(f["knownFlags"])
    assert "SECCOMP_FILTER_FLAG_TSYNC" in f["supportedFlags"]
    assert f["operators"] == ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ",
                              "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]
    # every advertised action and flag is accepted by parse and loads
    for a in f["actions"]:
        seccomp.parse(Obj({"defaultAction": "SCMP_ACT_ALLOW", "flags": f["supportedFlags"],
                           "syscalls": [{"names": ["lseek"], "action": a}]}))


def test_import_is_light():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = ("import sys; sys.path.insert(0, %r); before = set(sys.modules); "
            "import ociruntime.linux.seccomp; print(' '.join(sorted(set(sys.modules) - before)))"
            % repo)
    out = subprocess.run([os.path.join(repo, ".venv", "bin", "python"), "-I", "-S", "-c", code],
                         capture_output=True, text=True, check=True).stdout.split()
    assert "ociruntime.linux.seccomp" in out
    assert not set(out) & {"hashlib", "json", "re", "ctypes"}, out


def test_cached_prepare_stays_light(tmp_path):
    """The hot path (prepare from the cache) pulls in neither hashlib (OpenSSL, ~4 ms) nor
    json/re."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from ociruntime.config.reader import Obj\n"
            "from ociruntime.linux import seccomp\n"
            "d = {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [\n"
            "     {'names': ['mkdir'], 'action': 'SCMP_ACT_ERRNO'}]}\n"
            "p = seccomp.parse(Obj(d, 'linux.seccomp')).prepare(%r)\n"
            "print(p.cached, *sorted(m for m in sys.modules if m in ('hashlib', 'json', 're')))"
            % (repo, str(tmp_path / "c")))
    py = os.path.join(repo, ".venv", "bin", "python")
    outs = [subprocess.run([py, "-I", "-S", "-c", code], capture_output=True, text=True,
                           check=True).stdout.split() for _ in range(2)]
    assert outs == [["False"], ["True"]]


def test_fails_closed_without_libseccomp(monkeypatch, tmp_path):
    """security.md: seccomp asked for and libseccomp missing → refuse, even with a cache hit."""
    from ociruntime.errors import Unsupported
    d = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    compile_profile(d, str(tmp_path / "c"))  # a valid cache entry exists

    def missing():
        raise OSError("libseccomp.so.2: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(sc, "libseccomp", missing)
    with pytest.raises(Unsupported, match=r"^seccomp: libseccomp.so.2 is not available \("):
        compile_profile(d, str(tmp_path / "c"))
    assert seccomp.features() == {"enabled": False}


# ---------------------------------------------------------------- SCMP_ACT_NOTIFY

# linux/seccomp.h: struct seccomp_notif (80 bytes), struct seccomp_notif_resp (24 bytes)
NOTIF = "=QIIiIQ6Q"
NOTIF_RESP = "=QqiI"
IOCTL_NOTIF_RECV = 0xC0502100   # _IOWR('!', 0, struct seccomp_notif)
IOCTL_NOTIF_SEND = 0xC0182101   # _IOWR('!', 1, struct seccomp_notif_resp)
USER_NOTIF_FLAG_CONTINUE = 1
NR_MKDIR, NR_UNAME = 83, 63


def test_notify_fd_reaches_an_agent_that_answers(tmp_path):
    """The whole path: the child (the init) loads a NOTIFY filter and hands the listener fd to
    the parent (the runtime), which sends it to the agent at listenerPath with the container
    state; the agent answers mkdir with an errno and lets uname continue."""
    import fcntl
    import json
    import select
    import socket
    import struct

    agent_path = str(tmp_path / "agent.sock")
    prof = seccomp.parse(Obj({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent_path,
        "listenerMetadata": "hello-agent",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir", "mkdirat", "uname"], "action": "SCMP_ACT_NOTIFY"}]},
        "linux.seccomp"), allow_notify=True)
    prepared = prof.prepare(None)
    assert prepared.flags & seccomp.FLAG_NEW_LISTENER

    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.bind(agent_path)
    agent.listen(1)
    to_runtime, to_init = socket.socketpair()
    r, w = os.pipe()
    d = str(tmp_path / "d")
    pid = os.fork()
    if pid == 0:
        try:
            agent.close()
            to_runtime.close()
            os.close(r)
            sc.set_no_new_privs()
            fd = seccomp.load(prepared)
            socket.send_fds(to_init, [b"fd"], [fd])
            os.close(fd)
            res = (errno_of(os.mkdir, d), os.uname().sysname)
            os.write(w, repr(res).encode())
        finally:
            os._exit(0)
    os.close(w)
    to_init.close()
    conn = None
    notify_fd = None
    try:
        # the runtime: receive the fd from its init, pass it on to the agent
        to_runtime.settimeout(10)
        _, fds, _, _ = socket.recv_fds(to_runtime, 16, 1)
        assert len(fds) == 1
        state = {"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": pid,
                 "bundle": str(tmp_path)}
        seccomp.send_to_listener(prepared, fds[0], state)
        os.close(fds[0])
        # the agent
        agent.settimeout(10)
        conn, _ = agent.accept()
        conn.settimeout(10)
        msg, afds, _, _ = socket.recv_fds(conn, 65536, 4)
        got = json.loads(msg)
        assert got == {"ociVersion": "1.0.2", "fds": ["seccompFd"], "pid": pid,
                       "metadata": "hello-agent", "state": state}
        assert len(afds) == 1
        notify_fd = afds[0]
        seen = []
        for _ in range(2):
            assert select.select([notify_fd], [], [], 10)[0], "no notification within 10 s"
            buf = bytearray(struct.calcsize(NOTIF))
            fcntl.ioctl(notify_fd, IOCTL_NOTIF_RECV, buf, True)
            nid, npid, _, nr, _, _, *args = struct.unpack(NOTIF, buf)
            seen.append(nr)
            assert npid == pid
            if nr == NR_UNAME:
                resp = struct.pack(NOTIF_RESP, nid, 0, 0, USER_NOTIF_FLAG_CONTINUE)
            else:
                resp = struct.pack(NOTIF_RESP, nid, 0, -errno.ENOTUNIQ, 0)
            fcntl.ioctl(notify_fd, IOCTL_NOTIF_SEND, bytearray(resp), True)
        assert seen[1] == NR_UNAME and seen[0] in (NR_MKDIR, 258)  # mkdir or mkdirat
        out = os.read(r, 1000).decode()
        assert out == repr((errno.ENOTUNIQ, "Linux"))
        assert not os.path.exists(d)
    finally:
        for f in (notify_fd,):
            if f is not None:
                os.close(f)   # a blocked child gets ENOSYS and finishes
        if conn is not None:
            conn.close()
        agent.close()
        to_runtime.close()
        os.close(r)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


def test_send_to_listener_without_agent_is_a_clear_error(tmp_path):
    prof = seccomp.parse(Obj({
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(tmp_path / "none.sock"),
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}, "linux.seccomp"),
        allow_notify=True)
    p = prof.prepare(None)
    r, w = os.pipe()
    try:
        with pytest.raises(SetupError, match=r"^seccomp: sending the listener fd to .*none\.sock: "
                                             r"No such file or directory$"):
            seccomp.send_to_listener(p, r, {"pid": 1})
    finally:
        os.close(r)
        os.close(w)


def test_features_with_notify():
    f = seccomp.features(allow_notify=True)
    assert "SCMP_ACT_NOTIFY" in f["actions"]
    assert "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" in f["supportedFlags"]  # kernel >= 5.19
