"""``ocirun exec`` through the real CLI: a process joins a running container's namespaces,
cgroup, root, user, capabilities, rlimits, seccomp; exit statuses, errors, fds, security."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from helpers import OCIRUN


@pytest.fixture
def running(ocirun, make_bundle):
    """start(cid, **config_changes) -> (bundle, init pid) of a detached `sleep 1000`."""
    def start(cid="exec-c", edit=None):
        b = make_bundle(["sleep", "1000"])
        if edit:
            edit(b)
            b.write()
        ocirun.ok("run", "-d", "-b", b.path, cid, stdin=subprocess.DEVNULL)
        return b, ocirun.state(cid)["pid"]
    return start


def _state_file(ocirun, cid):
    with open(os.path.join(ocirun.root, cid, "state.json")) as f:
        return json.load(f)


def test_exec_output_and_exit_status(ocirun, running):
    running("exec-st")
    p = ocirun("exec", "exec-st", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (p.returncode, p.stdout, p.stderr) == (7, "out\n", "err\n")
    p = ocirun("exec", "exec-st", "sh", "-c", "kill -TERM $$")
    assert p.returncode == 128 + signal.SIGTERM
    assert ocirun("exec", "exec-st", "true").returncode == 0
    ocirun.ok("delete", "-f", "exec-st")


def test_options_stop_at_the_container_id(ocirun, running):
    running("exec-args")
    p = ocirun("exec", "--env", "A=1", "exec-args", "sh", "-c", "echo -n \"$A\" -x --y")
    assert (p.returncode, p.stdout) == (0, "1 -x --y"), p.stderr
    ocirun.ok("delete", "-f", "exec-args")


def test_exec_errors_use_runc_wording(ocirun, make_bundle, running):
    p = ocirun("exec", "exec-nosuch", "true")
    assert p.returncode == 1 and p.stderr.strip() == "ocirun: container does not exist"
    b = make_bundle(["true"])
    ocirun.ok("run", "-d", "-b", b.path, "exec-stopped", stdin=subprocess.DEVNULL)
    for _ in range(200):
        if ocirun.state("exec-stopped")["status"] == "stopped":
            break
        time.sleep(0.01)
    p = ocirun("exec", "exec-stopped", "true")
    assert p.returncode == 1
    assert p.stderr.strip() == "ocirun: cannot exec in a stopped container"
    ocirun.ok("delete", "exec-stopped")
    running("exec-err")
    p = ocirun("exec", "exec-err")
    assert p.returncode == 1 and "exec args cannot be empty" in p.stderr
    p = ocirun("exec", "exec-err", "/no/such")
    assert p.returncode == 1 and "no such file or directory" in p.stderr, p.stderr
    p = ocirun("exec", "-t", "-d", "exec-err", "true")
    assert p.returncode == 1 and "cannot allocate tty" in p.stderr
    # nothing left behind: only the init is in the container
    assert json.loads(ocirun.ok("ps", "--format", "json", "exec-err").stdout) == \
        [ocirun.state("exec-err")["pid"]]
    ocirun.ok("delete", "-f", "exec-err")


def test_exec_into_paused_container(ocirun, running):
    running("exec-paused")
    ocirun.ok("pause", "exec-paused")
    try:
        p = ocirun("exec", "exec-paused", "true")
        assert p.returncode == 1
        assert p.stderr.strip() == ("ocirun: cannot exec in a paused container (use "
                                    "--ignore-paused to override)")
        # --ignore-paused: the process joins the frozen cgroup and runs once resumed
        out = {}
        t = threading.Thread(target=lambda: out.setdefault(
            "p", ocirun("exec", "--ignore-paused", "exec-paused", "echo", "thawed")))
        t.start()
        time.sleep(0.5)
        assert t.is_alive()
    finally:
        ocirun.ok("resume", "exec-paused")
    t.join(20)
    assert out["p"].returncode == 0 and out["p"].stdout == "thawed\n", out["p"].stderr
    ocirun.ok("delete", "-f", "exec-paused")


def test_exec_joins_every_namespace_and_the_cgroup(ocirun, running, tmp_path):
    def edit(b):
        d = b.path   # the mapped root must reach the rootfs: o+x on the parents
        while d != "/":
            os.chmod(d, os.stat(d).st_mode | 0o001)
            d = os.path.dirname(d)
        c = b.config
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["hostname"] = "exec-host"
    b, init = running("exec-ns", edit)
    pidfile = tmp_path / "pid"
    ocirun.ok("exec", "-d", "--pid-file", pidfile, "exec-ns", "sleep", "100",
              stdin=subprocess.DEVNULL)
    raw = pidfile.read_text()
    assert raw.isdigit() and not raw.endswith("\n")
    pid = int(raw)
    for ns in ("user", "mnt", "pid", "net", "ipc", "uts", "cgroup"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/{init}/ns/{ns}"), ns
    assert os.stat(f"/proc/{pid}/root").st_ino == os.stat(f"/proc/{init}/root").st_ino
    with open(f"/proc/{pid}/cgroup") as f, open(f"/proc/{init}/cgroup") as g:
        assert f.read() == g.read()
    assert pid in json.loads(ocirun.ok("ps", "--format", "json", "exec-ns").stdout)
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    assert "Uid:\t100000\t100000\t100000\t100000" in status   # root of the userns, mapped
    p = ocirun("exec", "exec-ns", "sh", "-c", "hostname; echo $$; cat /proc/self/uid_map")
    assert p.returncode == 0, p.stderr
    host, inner_pid, umap = p.stdout.split("\n", 2)
    assert host == "exec-host" and int(inner_pid) > 1
    assert umap.split() == ["0", "100000", "65536"]
    ocirun.ok("delete", "-f", "exec-ns")


def test_exec_into_a_sub_cgroup(ocirun, running):
    running("exec-sub")
    st = _state_file(ocirun, "exec-sub")
    cg = st["cgroup"]
    dirs = sorted(set(cg["paths"].values())) if "paths" in cg else [cg["path"]]
    subs = [d + "/sub" for d in dirs]
    for d in subs:
        os.mkdir(d)
        for f in ("cpuset.cpus", "cpuset.mems"):   # a v1 cpuset child starts empty
            if os.path.exists(f"{d}/{f}"):
                with open(f"{d}/../{f}") as src, open(f"{d}/{f}", "w") as dst:
                    dst.write(src.read().strip() or "\n")
    try:
        p = ocirun("exec", "--cgroup", "sub", "exec-sub", "cat", "/proc/self/cgroup")
        assert p.returncode == 0, p.stderr
        lines = [ln for ln in p.stdout.splitlines() if ln.split(":", 2)[2] != "/"]
        assert lines and all(ln.endswith("/sub") for ln in lines), p.stdout
        p = ocirun("exec", "--cgroup", "nosuch", "exec-sub", "true")
        assert p.returncode == 1 and "does not exist" in p.stderr
        p = ocirun("exec", "--cgroup", "../../x", "exec-sub", "true")
        assert p.returncode == 1 and "inside the container's cgroup" in p.stderr
    finally:
        ocirun.ok("delete", "-f", "exec-sub")
        for d in subs:
            if os.path.isdir(d):
                os.rmdir(d)


def test_user_groups_cwd_env(ocirun, running):
    running("exec-user")
    cmd = ["sh", "-c", "id -u; id -g; id -G; pwd; echo $FOO $BAR"]
    p = ocirun("exec", "-u", "1:2", "-g", "5", "--additional-gids", "6", "--cwd", "/tmp",
               "-e", "FOO=foo", "--env", "BAR=bar", "exec-user", *cmd)
    assert p.stdout.split("\n")[:5] == ["1", "2", "2 5 6", "/tmp", "foo bar"], p.stderr
    # names from the container's /etc/passwd and /etc/group (busybox: daemon=1, bin=2)
    p = ocirun("exec", "-u", "daemon", "exec-user", "sh", "-c", "id -u; id -g")
    assert p.stdout.split() == ["1", "1"], p.stderr
    p = ocirun("exec", "-u", "daemon:bin", "exec-user", "sh", "-c", "id -u; id -g")
    assert p.stdout.split() == ["1", "2"], p.stderr
    p = ocirun("exec", "-u", "nosuchuser", "exec-user", "true")
    assert p.returncode == 1 and "unable to find user nosuchuser" in p.stderr
    p = ocirun("exec", "--cwd", "/nonexistent", "exec-user", "true")
    assert p.returncode == 1 and "chdir" in p.stderr
    ocirun.ok("delete", "-f", "exec-user")


def _caps(text):
    return {k: int(v, 16) for k, v in (ln.split(":\t") for ln in text.splitlines()
                                       if ln.startswith("Cap"))}


def test_capabilities_no_new_privs_and_cap_flag(ocirun, running):
    def edit(b):
        b.config["process"]["noNewPrivileges"] = False
    running("exec-caps", edit)
    p = ocirun("exec", "exec-caps", "cat", "/proc/self/status")
    caps = _caps(p.stdout)
    cfg = 1 << 29 | 1 << 5 | 1 << 10   # AUDIT_WRITE KILL NET_BIND_SERVICE
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == cfg
    assert caps["CapInh"] == caps["CapAmb"] == 0
    assert "NoNewPrivs:\t0" in p.stdout
    # --cap adds to bounding/effective/permitted, never inheritable (CVE-2022-29162)
    p = ocirun("exec", "--cap", "CAP_SYS_ADMIN", "--no-new-privs", "exec-caps",
               "cat", "/proc/self/status")
    caps = _caps(p.stdout)
    assert caps["CapEff"] == caps["CapBnd"] == cfg | 1 << 21
    assert caps["CapInh"] == caps["CapAmb"] == 0
    assert "NoNewPrivs:\t1" in p.stdout
    ocirun.ok("delete", "-f", "exec-caps")


def test_rlimits_of_the_container(ocirun, running):
    def edit(b):
        b.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 432}]
    running("exec-rl", edit)
    p = ocirun("exec", "exec-rl", "sh", "-c", "ulimit -n; ulimit -Hn")
    assert p.stdout.split() == ["321", "432"], p.stderr
    ocirun.ok("delete", "-f", "exec-rl")


def test_seccomp_of_the_container(ocirun, running):
    def edit(b):
        b.config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 1}]}
    running("exec-sc", edit)
    p = ocirun("exec", "exec-sc", "sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x")
    assert p.returncode == 1
    assert "Seccomp:\t2" in p.stdout and "Operation not permitted" in p.stderr
    ocirun.ok("delete", "-f", "exec-sc")


def test_process_json(ocirun, running, tmp_path):
    running("exec-pj")
    proc = {"args": ["sh", "-c", "echo $X; pwd; id -u"], "env": ["X=from-json"],
            "cwd": "/etc", "user": {"uid": 2, "gid": 2}, "terminal": False}
    f = tmp_path / "process.json"
    f.write_text(json.dumps(proc))
    p = ocirun("exec", "--process", f, "exec-pj")
    assert p.stdout.split() == ["from-json", "/etc", "2"], p.stderr
    p = ocirun("exec", "-p", "-", "exec-pj", input=json.dumps(proc))
    assert p.stdout.split() == ["from-json", "/etc", "2"], p.stderr
    f.write_text('{"args": []}')
    p = ocirun("exec", "--process", f, "exec-pj")
    assert p.returncode == 1 and "process.args" in p.stderr
    ocirun.ok("delete", "-f", "exec-pj")


def test_no_runtime_fd_leaks_and_preserve_fds(ocirun, running, tmp_path):
    running("exec-fd")
    p = ocirun("exec", "exec-fd", "sh", "-c", "ls /proc/self/fd")
    # 0 1 2, and 3: ls's own handle on /proc/self/fd
    assert p.stdout.split() == ["0", "1", "2", "3"], p.stdout
    marker = tmp_path / "marker"
    marker.write_text("preserved!")
    # fd 3 opened by a shell for ocirun only (pytest's own fd 3 stays untouched)
    p = subprocess.run(["sh", "-c", f'exec "$@" 3<"{marker}"', "sh", OCIRUN, "--root",
                        ocirun.root, "exec", "--preserve-fds", "1", "exec-fd", "sh", "-c",
                        "cat <&3; echo; ls /proc/self/fd"],
                       capture_output=True, text=True, timeout=30)
    lines = p.stdout.split("\n")
    assert lines[0] == "preserved!", p.stderr
    assert lines[1:-1] == ["0", "1", "2", "3", "4"], p.stdout
    ocirun.ok("delete", "-f", "exec-fd")


def test_no_runtime_process_or_interpreter_visible_inside(ocirun, running):
    """CVE-2019-5736: while exec runs (the foreground runtime waits), nothing in the
    container's pid namespace is the host interpreter or any runtime process."""
    running("exec-exe")
    p = ocirun("exec", "exec-exe", "sh", "-c",
               "for p in /proc/[0-9]*; do echo $p $(readlink $p/exe) $(tr '\\0' ' ' "
               "< $p/cmdline); done")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) >= 2   # the init (sleep), the shell ...
    for ln in lines:
        assert "python" not in ln and "ocirun" not in ln, ln
    ocirun.ok("delete", "-f", "exec-exe")


def test_exec_child_is_non_dumpable_from_its_first_step():
    """CVE-2016-9962: the joining child is non-dumpable before it touches anything of the
    container. The child blocks at its first step (the cgroup write, here into a full pipe);
    /proc/<pid>/ of a non-dumpable process is owned by root whatever the process's uid."""
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    from ociruntime.linux import exec as lexec
    if os.geteuid() != 0:
        pytest.skip("needs root")
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)
    er, ew = os.pipe()

    def child(run_child_main):
        pid = os.fork()
        if pid == 0:
            os.setresuid(4321, 4321, 4321)
            lexec.sc.set_dumpable(True)   # a uid change made it non-dumpable: undo that
            if run_child_main:
                ctx = lexec.ExecContext()
                ctx.cgroup_fds = [w]
                ctx.err_w = ew
                lexec.child_main(ctx)
            time.sleep(30)
            os._exit(0)
        return pid

    try:
        for run_child_main, owner in ((False, 4321), (True, 0)):   # control, then real
            pid = child(run_child_main)
            try:
                for _ in range(200):
                    if os.stat(f"/proc/{pid}/status").st_uid == owner:
                        break
                    time.sleep(0.01)
                assert os.stat(f"/proc/{pid}/status").st_uid == owner, run_child_main
                assert os.stat(f"/proc/{pid}/fd").st_uid == owner
            finally:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    finally:
        for fd in (r, w, er, ew):
            os.close(fd)


def test_api_exec(ocirun, running):
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    from ociruntime.api import Runtime
    running("exec-api")
    rt = Runtime(root=ocirun.root)
    pid = rt.exec("exec-api", args=["sleep", "100"], detach=True)
    assert pid in rt.ps("exec-api")
    os.kill(pid, signal.SIGKILL)
    for _ in range(200):   # reparented to our subreaper or init; gone either way
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if pid not in rt.ps("exec-api"):
            break
        time.sleep(0.01)
    assert pid not in rt.ps("exec-api")
    # the caller's own children are not born in the container's pid namespace
    assert subprocess.run(["true"]).returncode == 0
    assert os.readlink("/proc/self/ns/pid_for_children") == os.readlink("/proc/self/ns/pid")
    rt.delete("exec-api", force=True)


def test_foreground_exec_forwards_signals(ocirun, running):
    running("exec-sig")
    p = subprocess.Popen([OCIRUN, "--root", ocirun.root, "exec", "exec-sig", "sleep", "100"],
                         stdin=subprocess.DEVNULL)
    pids = []
    for _ in range(300):   # wait until the exec'd sleep is in the container
        pids = json.loads(ocirun.ok("ps", "--format", "json", "exec-sig").stdout)
        if len(pids) == 2:
            break
        time.sleep(0.01)
    assert len(pids) == 2
    time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 128 + signal.SIGTERM
    ocirun.ok("delete", "-f", "exec-sig")


def test_pid_file_failure_leaves_no_process(ocirun, running, tmp_path):
    running("exec-pf")
    p = ocirun("exec", "-d", "--pid-file", tmp_path / "no" / "such" / "pid", "exec-pf",
               "sleep", "100", stdin=subprocess.DEVNULL)
    assert p.returncode == 1 and "pid file" in p.stderr
    assert json.loads(ocirun.ok("ps", "--format", "json", "exec-pf").stdout) == \
        [ocirun.state("exec-pf")["pid"]]
    ocirun.ok("delete", "-f", "exec-pf")


def test_exec_into_a_no_pivot_container_sees_its_root(ocirun, make_bundle, tmp_path):
    # MS_MOVE + chroot: setns into the mount namespace follows the mount on its root
    # (LOOKUP_DOWN); exec also compares with the init's root and chroots if they differ
    b = make_bundle(["sleep", "1000"])
    ocirun.ok("run", "-d", "--no-pivot", "-b", b.path, "exec-np", stdin=subprocess.DEVNULL)
    init = ocirun.state("exec-np")["pid"]
    host_only = tmp_path / "host-only-marker"
    host_only.write_text("x")
    p = ocirun("exec", "exec-np", "sh", "-c",
               f"test -e {host_only} && echo HOST; test -x /bin/busybox && echo OK")
    assert p.stdout.split() == ["OK"], (p.stdout, p.stderr)
    pidfile = tmp_path / "pid"
    ocirun.ok("exec", "-d", "--pid-file", pidfile, "exec-np", "sleep", "100",
              stdin=subprocess.DEVNULL)
    pid = int(pidfile.read_text())
    st, ist = os.stat(f"/proc/{pid}/root"), os.stat(f"/proc/{init}/root")
    assert (st.st_dev, st.st_ino) == (ist.st_dev, ist.st_ino)
    ocirun.ok("delete", "-f", "exec-np")


def test_lsm_labels_fail_closed(ocirun, running):
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    from ociruntime.linux import lsm
    running("exec-lsm")
    if not lsm.apparmor_enabled():
        p = ocirun("exec", "--apparmor", "someprofile", "exec-lsm", "true")
        assert p.returncode == 1 and "AppArmor is not enabled" in p.stderr
    if not lsm.selinux_enabled():
        p = ocirun("exec", "--process-label", "system_u:system_r:x:s0", "exec-lsm", "true")
        assert p.returncode == 1 and "SELinux is not enabled" in p.stderr
    assert json.loads(ocirun.ok("ps", "--format", "json", "exec-lsm").stdout) == \
        [ocirun.state("exec-lsm")["pid"]]
    ocirun.ok("delete", "-f", "exec-lsm")


def test_pidfd_socket_detached(ocirun, running, tmp_path):
    import array
    import socket
    running("exec-pidfd")
    path = str(tmp_path / "pidfd.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(20)
    got = {}

    def accept():
        conn, _ = srv.accept()
        with conn:
            fds = array.array("i")
            msg, anc, _, _ = conn.recvmsg(64, socket.CMSG_SPACE(fds.itemsize))
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fds.frombytes(data[:fds.itemsize])
            got["fds"] = list(fds)
    th = threading.Thread(target=accept)
    th.start()
    pidfile = tmp_path / "pid"
    try:
        ocirun.ok("exec", "-d", "--pidfd-socket", path, "--pid-file", pidfile, "exec-pidfd",
                  "sleep", "100", stdin=subprocess.DEVNULL)
        th.join(20)
        (fd,) = got["fds"]
        with open(f"/proc/self/fdinfo/{fd}") as f:
            assert f"Pid:\t{pidfile.read_text()}" in f.read()
        os.close(fd)
    finally:
        srv.close()
        ocirun.ok("delete", "-f", "exec-pidfd")
