"""ocirun checkpoint / restore with a real CRIU on this host (docs/checkpoint.md)."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import REPO

sys.path.insert(0, REPO)
from ociruntime import criu as criu_mod  # noqa: E402

COUNTER = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/count; echo $i; "
           "sleep 0.05; done"]


class Piped:
    """Run ocirun as a shim would: stdout a pipe we read (the container inherits it), stderr a
    named log file opened O_APPEND (CRIU checks the size of other regular files at restore;
    Runner's O_TMPFILE files cannot be reopened by CRIU at all)."""

    def __init__(self, ocirun, tmp_path, *args):
        self.r, w = os.pipe()
        os.set_blocking(self.r, False)
        err = tmp_path / f"err{os.getpid()}-{time.monotonic_ns()}"
        with open(err, "a") as ef:
            p = subprocess.run([ocirun.binary, "--root", ocirun.root, *map(str, args)],
                               stdin=subprocess.DEVNULL, stdout=w, stderr=ef, timeout=60)
        os.close(w)
        self.returncode = p.returncode
        self.stderr = err.read_text()
        self.errfile = err
        self.buf = b""

    def check(self):
        assert self.returncode == 0, self.stderr
        return self

    def last(self, timeout=10, above=0):
        """The last number the container wrote to stdout, once it is > above."""
        end = time.time() + timeout
        while time.time() < end:
            try:
                chunk = os.read(self.r, 65536)
            except BlockingIOError:
                chunk = None
            if chunk:
                self.buf += chunk
            lines = [x for x in self.buf.split(b"\n")[:-1] if x.strip().isdigit()]
            if lines and int(lines[-1]) > above:
                return int(lines[-1])
            time.sleep(0.05)
        raise AssertionError(f"no number > {above} on the container's stdout")

    def close(self):
        os.close(self.r)


def _criu_or_skip():
    try:
        path, _v = criu_mod.require()
    except criu_mod.CriuError as e:
        pytest.skip(f"no usable CRIU here: {e}")
    p = subprocess.run([path, "check"], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"'criu check' fails on this kernel: {(p.stdout + p.stderr).strip()[-200:]}")
    return path


@pytest.fixture
def criu():
    return _criu_or_skip()


def _pid(ocirun, cid):
    return ocirun.state(cid)["pid"]


def _count(pid):
    try:
        with open(f"/proc/{pid}/root/dev/shm/count") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _wait_count(pid, above, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        n = _count(pid)
        if n > above:
            return n
        time.sleep(0.05)
    raise AssertionError(f"counter of pid {pid} did not pass {above} (at {_count(pid)})")


def _cgroup_gone(cid):
    return not any(os.path.exists(f"/sys/fs/cgroup/{c}/ocirun/{cid}")
                   for c in ("memory", "pids", "cpu", "devices", "freezer"))


def _counter(ocirun, make_bundle, tmp_path, cid, **res):
    b = make_bundle(args=COUNTER)
    if res:
        b.linux.setdefault("resources", {}).update(res)
        b.write()
    out = Piped(ocirun, tmp_path, "run", "-d", "-b", b.path, cid).check()
    _wait_count(_pid(ocirun, cid), 2)
    return b, out


def test_checkpoint_restore_keeps_counting(ocirun, make_bundle, tmp_path, criu):
    cid = "criu-count"
    b, out = _counter(ocirun, make_bundle, tmp_path, cid)
    img = tmp_path / "img"
    ocirun.ok("checkpoint", "--image-path", img, cid)
    before = out.last()
    out.close()
    # as runc: without --leave-running the container is gone and its ID free again
    assert cid not in ocirun.ids()
    assert _cgroup_gone(cid)
    assert (img / "inventory.img").exists() and (img / "descriptors.json").exists()
    out = Piped(ocirun, tmp_path, "restore", "-d", "--image-path", img, "-b", b.path,
                cid).check()
    st = ocirun.state(cid)
    assert st["status"] == "running"
    pid = st["pid"]
    first = _count(pid)
    assert first > 2, "restored counter did not keep its value"
    _wait_count(pid, first + 3)
    # the restored process writes into the pipe given to restore (descriptors.json)
    assert out.last(above=before) > before
    out.close()
    # behaves like a created+started container: exec, pause/resume, kill, state, delete
    p = ocirun.ok("exec", cid, "cat", "/dev/shm/count")
    assert int(p.stdout.strip()) >= first
    ocirun.ok("pause", cid)
    assert ocirun.state(cid)["status"] == "paused"
    n = _count(pid)
    time.sleep(0.3)
    assert _count(pid) == n
    ocirun.ok("resume", cid)
    _wait_count(pid, n + 2)
    ocirun.ok("kill", cid, "KILL")
    for _ in range(100):
        if ocirun.state(cid)["status"] == "stopped":
            break
        time.sleep(0.05)
    assert ocirun.state(cid)["status"] == "stopped"
    ocirun.ok("delete", cid)
    assert _cgroup_gone(cid)


def test_leave_running_and_restore_under_new_name(ocirun, make_bundle, tmp_path, criu):
    b, out = _counter(ocirun, make_bundle, tmp_path, "criu-orig", memory={"limit": 128 << 20},
                    pids={"limit": 50})
    img = tmp_path / "img"
    ocirun.ok("checkpoint", "--leave-running", "--image-path", img, "--work-path",
              tmp_path / "work", "criu-orig")
    assert (tmp_path / "work" / "dump.log").exists()
    pid = _pid(ocirun, "criu-orig")
    assert ocirun.state("criu-orig")["status"] == "running"
    _wait_count(pid, _count(pid) + 3)        # the original keeps counting
    out.close()
    Piped(ocirun, tmp_path, "restore", "--detach", "--image-path", img, "--work-path",
          tmp_path / "work2", "--bundle", b.path, "--pid-file", tmp_path / "pid",
          "criu-copy").check().close()
    pid2 = _pid(ocirun, "criu-copy")
    assert (tmp_path / "pid").read_text() == str(pid2)
    assert (tmp_path / "work2" / "restore.log").exists()
    assert pid2 != pid
    _wait_count(pid2, _count(pid2) + 3)      # the copy counts too
    _wait_count(pid, _count(pid) + 3)
    # its own cgroup, with the config's limits
    with open(f"/proc/{pid2}/cgroup") as f:
        cg = f.read()
    assert "/ocirun/criu-copy" in cg and "/ocirun/criu-orig" not in cg
    with open("/sys/fs/cgroup/memory/ocirun/criu-copy/memory.limit_in_bytes") as f:
        assert int(f.read()) == 128 << 20
    with open("/sys/fs/cgroup/pids/ocirun/criu-copy/pids.max") as f:
        assert f.read().strip() == "50"
    assert pid2 in [int(x) for x in ocirun.ok("ps", "--format", "json", "criu-copy").stdout
                    .strip("[]\n").split(",") if x.strip()]
    # root.readonly survives the restore
    r = subprocess.run(["nsenter", "-t", str(pid2), "-m", "touch", "/ro-check"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Read-only" in r.stderr
    for cid in ("criu-orig", "criu-copy"):
        ocirun.ok("delete", "--force", cid)
        assert _cgroup_gone(cid)


def test_failed_dump_leaves_container_running(ocirun, make_bundle, tmp_path, criu):
    _counter(ocirun, make_bundle, tmp_path, "criu-fail")[1].close()
    pid = _pid(ocirun, "criu-fail")
    img = tmp_path / "img"
    # nothing listens on port 1: CRIU cannot reach the page server and the dump fails
    p = ocirun("checkpoint", "--page-server", "127.0.0.1:1", "--image-path", img, "criu-fail")
    assert p.returncode == 1
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "criu dump failed" in p.stderr and f"log file: {img}/dump.log" in p.stderr
    assert os.path.exists(img / "dump.log")
    assert ocirun.state("criu-fail")["status"] == "running"
    _wait_count(pid, _count(pid) + 3)        # not frozen, not killed
    ocirun.ok("delete", "--force", "criu-fail")


def test_failure_modes_are_one_line(ocirun, make_bundle, tmp_path, criu):
    b, out = _counter(ocirun, make_bundle, tmp_path, "criu-modes")
    out.close()
    pid = _pid(ocirun, "criu-modes")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = [
        (("checkpoint", "--image-path", blocker / "img", "criu-modes"),
         "cannot create image directory"),
        (("checkpoint", "--image-path", tmp_path / "i", "criu-nope"), "container does not exist"),
        (("checkpoint", "--manage-cgroups-mode", "bogus", "--image-path", tmp_path / "i",
          "criu-modes"), "invalid --manage-cgroups-mode"),
        (("restore", "-d", "--image-path", tmp_path / "empty", "-b", b.path, "criu-x"),
         "no checkpoint images in"),
    ]
    (tmp_path / "empty").mkdir()
    for args, want in cases:
        p = ocirun(*args)
        assert p.returncode == 1 and want in p.stderr, (args, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    # restore into an existing ID: refused, the running one untouched
    img = tmp_path / "img"
    ocirun.ok("checkpoint", "--leave-running", "--image-path", img, "criu-modes")
    p = Piped(ocirun, tmp_path, "restore", "-d", "--image-path", img, "-b", b.path,
              "criu-modes")
    p.close()
    assert p.returncode == 1 and "container with id exists: criu-modes" in p.stderr
    assert ocirun.state("criu-modes")["pid"] == pid
    _wait_count(pid, _count(pid) + 2)
    # CRIU missing / too old
    p = ocirun("checkpoint", "--image-path", tmp_path / "i2", "criu-modes",
               glob=("--criu", "/nonexistent/criu"))
    assert p.returncode == 1 and "does not exist" in p.stderr
    old = tmp_path / "oldcriu"
    old.write_text("#!/bin/sh\necho 'Version: 3.17.1'\n")
    old.chmod(0o755)
    p = ocirun("checkpoint", "--image-path", tmp_path / "i3", "criu-modes", glob=("--criu", old))
    assert p.returncode == 1 and "version 3.17.1" in p.stderr and ">= 4.1" in p.stderr
    assert ocirun.state("criu-modes")["status"] == "running"
    ocirun.ok("delete", "--force", "criu-modes")
    assert not os.path.exists(os.path.join(ocirun.root, "criu-x"))
    assert _cgroup_gone("criu-x")


def test_foreground_restore_returns_exit_status(ocirun, make_bundle, tmp_path, criu):
    b = make_bundle(args=["sh", "-c", "i=0; while [ $i -lt 40 ]; do i=$((i+1)); "
                                      "echo $i > /dev/shm/count; sleep 0.05; done; exit 7"])
    Piped(ocirun, tmp_path, "run", "-d", "-b", b.path, "criu-fg").check().close()
    _wait_count(_pid(ocirun, "criu-fg"), 2)
    ocirun.ok("checkpoint", "--image-path", tmp_path / "img", "criu-fg")
    p = Piped(ocirun, tmp_path, "restore", "--image-path", tmp_path / "img", "-b", b.path,
              "criu-fg")
    p.close()
    assert p.returncode == 7, p.stderr
    assert "criu-fg" not in ocirun.ids()
    assert _cgroup_gone("criu-fg")


def test_flags(ocirun):
    for cmd in ("checkpoint", "restore"):
        p = ocirun(cmd, "--help")
        assert p.returncode == 0 and "--image-path" in p.stdout
    p = ocirun("restore", "--lsm-mount-context")
    assert p.returncode == 1 and "flag needs an argument" in p.stderr
    p = ocirun("restore", "--lsm-profile")
    assert p.returncode == 1 and "flag needs an argument" in p.stderr
    # single-dash forms parse (then fail on the missing images, not on the flags)
    p = ocirun("restore", "-no-subreaper", "-no-pivot", "-detach", "-tcp-established",
               "-image-path", "/nonexistent-img", "x")
    assert "flag provided but not defined" not in p.stderr
    assert p.returncode == 1
    for f in ("--leave-running", "--tcp-established", "--ext-unix-sk", "--shell-job",
              "--file-locks", "--pre-dump", "--auto-dedup", "--lazy-pages"):
        p = ocirun("checkpoint", f, "criu-nope")
        assert "flag provided" not in p.stderr and "container does not exist" in p.stderr, f
    for f, v in (("--parent-path", "x"), ("--page-server", "1.2.3.4:5"),
                 ("--manage-cgroups-mode", "soft"), ("--empty-ns", "network"),
                 ("--status-fd", "3"), ("--work-path", "/tmp")):
        p = ocirun("checkpoint", f, v, "criu-nope")
        assert "container does not exist" in p.stderr, (f, p.stderr)


def test_unit_version_and_config(tmp_path):
    assert criu_mod.parse_version("Version: 4.1.1\nGitID: v4.1.1\n") == (4, 1, 1)
    assert criu_mod.parse_version("Version: 3.17\n") == (3, 17, 0)
    with pytest.raises(criu_mod.CriuError):
        criu_mod.parse_version("garbage")
    conf = tmp_path / "c.conf"
    conf.write_text("tcp-established\n")
    assert criu_mod.config_file({"org.criu.config": str(conf)}) == str(conf)
    assert criu_mod.config_file({"org.criu.config": ""}) is None
    with pytest.raises(criu_mod.CriuError):
        criu_mod.config_file({"org.criu.config": str(tmp_path / "missing")})


def test_netns_joined_by_path_is_rejoined(ocirun, make_bundle, tmp_path, criu):
    name = f"criu-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        path = f"/run/netns/{name}"
        b = make_bundle(args=COUNTER)
        b.linux["namespaces"] = [n if n["type"] != "network" else {"type": "network",
                                                                   "path": path}
                                 for n in b.linux["namespaces"]]
        b.write()
        Piped(ocirun, tmp_path, "run", "-d", "-b", b.path, "criu-netns").check().close()
        _wait_count(_pid(ocirun, "criu-netns"), 2)
        ocirun.ok("checkpoint", "--image-path", tmp_path / "img", "criu-netns")
        Piped(ocirun, tmp_path, "restore", "-d", "--image-path", tmp_path / "img", "-b", b.path,
              "criu-netns").check().close()
        pid = _pid(ocirun, "criu-netns")
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(path).st_ino
        _wait_count(pid, _count(pid) + 2)
        ocirun.ok("delete", "--force", "criu-netns")
    finally:
        subprocess.run(["ip", "netns", "del", name])


def test_migrate_script_local(ocirun, make_bundle, tmp_path, criu):
    """hack/migrate's stop-and-copy path with a "local" destination: bundle and images rsynced
    to another directory, restored there under a new name; the counter keeps counting."""
    if subprocess.run(["which", "rsync"], capture_output=True).returncode != 0:
        pytest.skip("rsync is not installed (hack/setup.d/30-criu.sh installs it)")
    _, out = _counter(ocirun, make_bundle, tmp_path, "criu-mig-a")
    before = out.last()
    dest = tmp_path / "dest"
    p = subprocess.run([os.path.join(REPO, "hack", "migrate"), "--root", ocirun.root,
                        "--dest-dir", str(dest), "--new-id", "criu-mig-b", "criu-mig-a", "local"],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    out.close()
    assert p.returncode == 0, p.stderr
    assert "downtime_ms=" in p.stdout
    assert "criu-mig-a" not in ocirun.ids()
    st = ocirun.state("criu-mig-b")
    assert st["bundle"] == str(dest) and st["status"] == "running"
    n = _count(st["pid"])
    assert n >= before
    _wait_count(st["pid"], n + 3)
    ocirun.ok("delete", "--force", "criu-mig-b")


def test_pre_dump(ocirun, make_bundle, tmp_path, criu):
    """Where the kernel tracks dirty pages, pre-dump + final dump with --parent-path restores;
    where it does not (this host), one clear line and the container keeps running."""
    tracks = subprocess.run([criu, "check", "--feature", "mem_dirty_track"],
                            capture_output=True).returncode == 0
    b, out = _counter(ocirun, make_bundle, tmp_path, "criu-pre")
    out.close()
    pid = _pid(ocirun, "criu-pre")
    p = ocirun("checkpoint", "--pre-dump", "--image-path", tmp_path / "pre1", "criu-pre")
    assert ocirun.state("criu-pre")["status"] == "running"
    if not tracks:
        assert p.returncode == 1 and "criu pre-dump failed" in p.stderr
        assert "Tracking memory is not available" in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
        _wait_count(pid, _count(pid) + 2)
        ocirun.ok("delete", "--force", "criu-pre")
        return
    assert p.returncode == 0, p.stderr
    ocirun.ok("checkpoint", "--parent-path", "../pre1", "--image-path", tmp_path / "final",
              "criu-pre")
    Piped(ocirun, tmp_path, "restore", "-d", "--image-path", tmp_path / "final", "-b", b.path,
          "criu-pre").check().close()
    pid = _pid(ocirun, "criu-pre")
    _wait_count(pid, _count(pid) + 2)
    ocirun.ok("delete", "--force", "criu-pre")


def _piped_both(ocirun, *args):
    """stdout and stderr one pipe (a user-namespaced init cannot reopen a host file through
    /proc/<criu>/fd at restore: CRIU limitation; shims give pipes or fifos)."""
    r, w = os.pipe()
    p = subprocess.run([ocirun.binary, "--root", ocirun.root, *map(str, args)],
                       stdin=subprocess.DEVNULL, stdout=w, stderr=w, timeout=60)
    os.close(w)
    os.set_blocking(r, False)
    try:
        out = os.read(r, 65536).decode(errors="replace")
    except BlockingIOError:
        out = ""
    os.close(r)
    assert p.returncode == 0, out


def test_user_namespace(ocirun, make_bundle, tmp_path, criu):
    b = make_bundle(args=COUNTER, copy_rootfs=True)
    subprocess.run(["chown", "-R", "100000:100000", b.rootfs], check=True)
    d = b.path   # the mapped root must reach the rootfs: o+x on the parents (as runc needs)
    while d != "/":
        os.chmod(d, os.stat(d).st_mode | 0o001)
        d = os.path.dirname(d)
    b.linux["namespaces"].append({"type": "user"})
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.write()
    _piped_both(ocirun, "run", "-d", "-b", b.path, "criu-userns")
    _wait_count(_pid(ocirun, "criu-userns"), 2)
    img = tmp_path / "img"
    ocirun.ok("checkpoint", "--image-path", img, "criu-userns")
    _piped_both(ocirun, "restore", "-d", "--image-path", img, "-b", b.path, "criu-userns")
    pid = _pid(ocirun, "criu-userns")
    with open(f"/proc/{pid}/uid_map") as f:
        assert f.read().split() == ["0", "100000", "65536"]
    _wait_count(pid, _count(pid) + 2)
    # the image directory: searchable by the container's root only (gid 100000, 0710)
    st = os.stat(img)
    assert st.st_gid == 100000 and st.st_mode & 0o777 == 0o710
    ocirun.ok("delete", "--force", "criu-userns")


class ConsoleSocket:
    """A console socket (as a shim): accepts one connection, keeps the pty master."""

    def __init__(self, path):
        import socket
        import threading
        self.path = str(path)
        self.master = None
        self.name = None
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def _accept(self):
        import array
        import socket
        c, _ = self.sock.accept()
        msg, anc, _f, _a = c.recvmsg(1024, socket.CMSG_SPACE(4))
        a = array.array("i")
        a.frombytes(anc[0][2][:4])
        self.master, self.name = a[0], msg.decode()
        c.close()

    def wait(self):
        self.t.join(10)
        self.sock.close()
        assert self.master is not None, "no pty master received"
        os.set_blocking(self.master, False)
        return self.master

    def read_numbers(self, secs=1.0):
        out = b""
        end = time.time() + secs
        while time.time() < end:
            try:
                out += os.read(self.master, 4096)
            except BlockingIOError:
                time.sleep(0.05)
        return [int(x) for x in out.split() if x.isdigit()]

    def close(self):
        if self.master is not None:
            os.close(self.master)


def test_terminal_container(ocirun, make_bundle, tmp_path, criu):
    """process.terminal: the dump goes over CRIU's RPC with orphan_pts_master; restore
    receives the recreated pty's master and sends it to the new console socket."""
    b = make_bundle(args=["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; "
                                      "echo $i > /dev/shm/count; sleep 0.05; done"],
                    terminal=True)
    cs = ConsoleSocket(tmp_path / "cs1")
    ocirun.ok("run", "-d", "--console-socket", cs.path, "-b", b.path, "criu-tty",
              stdin=subprocess.DEVNULL)
    cs.wait()
    seen = cs.read_numbers(0.5)
    assert seen, "no output through the pty"
    p = ocirun("restore", "-d", "--image-path", tmp_path / "none", "-b", b.path, "criu-tty2")
    assert p.returncode == 1 and "console socket" in p.stderr
    ocirun.ok("checkpoint", "--image-path", tmp_path / "img", "criu-tty")
    cs.close()
    cs2 = ConsoleSocket(tmp_path / "cs2")
    ocirun.ok("restore", "-d", "--console-socket", cs2.path, "--image-path", tmp_path / "img",
              "-b", b.path, "criu-tty", stdin=subprocess.DEVNULL)
    cs2.wait()
    after = cs2.read_numbers(1.0)
    assert after and after[-1] > seen[-1], (seen[-3:], after[:5])
    pid = _pid(ocirun, "criu-tty")
    with open(f"/proc/{pid}/mountinfo") as f:
        assert f.readline().split()[5].startswith("ro")    # root.readonly on the RPC path
    ocirun.ok("delete", "--force", "criu-tty")
    cs2.close()
    assert _cgroup_gone("criu-tty")


def test_checkpoint_paused_container(ocirun, make_bundle, tmp_path, criu):
    """A paused container is dumped through its frozen cgroup (--freeze-cgroup) and stays
    paused with --leave-running; its restored copy runs."""
    b, out = _counter(ocirun, make_bundle, tmp_path, "criu-paused")
    out.close()
    ocirun.ok("pause", "criu-paused")
    ocirun.ok("checkpoint", "--leave-running", "--image-path", tmp_path / "img", "criu-paused")
    assert ocirun.state("criu-paused")["status"] == "paused"
    Piped(ocirun, tmp_path, "restore", "-d", "--image-path", tmp_path / "img", "-b", b.path,
          "criu-thawed").check().close()
    assert ocirun.state("criu-thawed")["status"] == "running"
    pid = _pid(ocirun, "criu-thawed")
    _wait_count(pid, _count(pid) + 2)
    for cid in ("criu-paused", "criu-thawed"):
        ocirun.ok("delete", "--force", cid)


def test_criu_config_annotation(ocirun, make_bundle, tmp_path, criu):
    """org.criu.config names a CRIU config file (criu --config): a file CRIU rejects makes
    the dump fail (proof it is read); an empty value means no file."""
    bad = tmp_path / "bad.conf"
    bad.write_text("no-such-criu-option\n")
    b = make_bundle(args=COUNTER)
    b.config["annotations"] = {"org.criu.config": str(bad)}
    b.write()
    Piped(ocirun, tmp_path, "run", "-d", "-b", b.path, "criu-conf").check().close()
    _wait_count(_pid(ocirun, "criu-conf"), 2)
    p = ocirun("checkpoint", "--leave-running", "--image-path", tmp_path / "i1", "criu-conf")
    assert p.returncode == 1 and "criu dump failed" in p.stderr, p.stderr
    assert "no-such-criu-option" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert ocirun.state("criu-conf")["status"] == "running"
    ocirun.ok("delete", "--force", "criu-conf")
    b.config["annotations"] = {"org.criu.config": ""}
    b.write()
    Piped(ocirun, tmp_path, "run", "-d", "-b", b.path, "criu-conf").check().close()
    _wait_count(_pid(ocirun, "criu-conf"), 2)
    ocirun.ok("checkpoint", "--leave-running", "--image-path", tmp_path / "i2", "criu-conf")
    ocirun.ok("delete", "--force", "criu-conf")


def test_bind_mount_external_and_failed_restore_cleans_up(ocirun, make_bundle, tmp_path, criu):
    """A bind mount is external: restore binds the config's source again (the restored
    process writes through it); with the source gone, restore fails in one line and leaves
    no state entry and no cgroup."""
    data = tmp_path / "data"
    data.mkdir()
    b = make_bundle(args=["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /data/n; "
                                      "echo $i > /dev/shm/count; sleep 0.05; done"])
    b.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                               "options": ["rbind", "rw"]})
    b.write()
    Piped(ocirun, tmp_path, "run", "-d", "-b", b.path, "criu-bind").check().close()
    _wait_count(_pid(ocirun, "criu-bind"), 2)
    img = tmp_path / "img"
    ocirun.ok("checkpoint", "--leave-running", "--image-path", img, "criu-bind")
    ocirun.ok("delete", "--force", "criu-bind")
    data2 = tmp_path / "data2"          # restore maps /data to the config's (new) source
    data2.mkdir()
    b.config["mounts"][-1]["source"] = str(data2)
    b.write()
    Piped(ocirun, tmp_path, "restore", "-d", "--image-path", img, "-b", b.path,
          "criu-bind").check().close()
    end = time.time() + 10
    while not (data2 / "n").exists() and time.time() < end:
        time.sleep(0.05)
    assert (data2 / "n").exists(), "the restored process does not write to the new source"
    ocirun.ok("delete", "--force", "criu-bind")
    b.config["mounts"][-1]["source"] = str(tmp_path / "gone")
    b.write()
    p = Piped(ocirun, tmp_path, "restore", "-d", "--image-path", img, "-b", b.path,
              "criu-bind")
    p.close()
    assert p.returncode == 1 and "criu restore failed" in p.stderr
    assert f"log file: {img}/restore.log" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "criu-bind" not in ocirun.ids()
    assert _cgroup_gone("criu-bind")


def test_python_api(ocirun, make_bundle, tmp_path, criu):
    from ociruntime.api import Runtime
    b = make_bundle(args=COUNTER)
    _piped_both(ocirun, "run", "-d", "-b", b.path, "criu-api")
    _wait_count(_pid(ocirun, "criu-api"), 2)
    rt = Runtime(root=ocirun.root)
    rt.checkpoint("criu-api", image_path=str(tmp_path / "img"), leave_running=True)
    assert rt.state("criu-api")["status"] == "running"
    rt.delete("criu-api", force=True)
    r, w = os.pipe()            # the restored init's stdio: a pipe, as a shim gives
    saved = [os.dup(fd) for fd in (1, 2)]
    try:
        os.dup2(w, 1)
        os.dup2(w, 2)
        assert rt.restore("criu-api", b.path, image_path=str(tmp_path / "img")) == 0
    finally:
        for fd, s in zip((1, 2), saved):
            os.dup2(s, fd)
            os.close(s)
        os.close(w)
        os.close(r)
    pid = rt.state("criu-api")["pid"]
    _wait_count(pid, _count(pid) + 2)
    rt.delete("criu-api", force=True)


def test_restore_manage_cgroups_ignore(ocirun, make_bundle, tmp_path, criu):
    """--manage-cgroups-mode ignore: CRIU leaves cgroups alone; the restored tasks are in the
    new container's cgroup because criu itself was (joined before it execs)."""
    b, out = _counter(ocirun, make_bundle, tmp_path, "criu-ign")
    out.close()
    ocirun.ok("checkpoint", "--leave-running", "--manage-cgroups-mode", "ignore",
              "--image-path", tmp_path / "img", "criu-ign")
    Piped(ocirun, tmp_path, "restore", "-d", "--manage-cgroups-mode", "ignore",
          "--image-path", tmp_path / "img", "-b", b.path, "criu-ign2").check().close()
    pid = _pid(ocirun, "criu-ign2")
    with open(f"/proc/{pid}/cgroup") as f:
        mem = [ln for ln in f.read().splitlines() if ":memory:" in ln or ln.startswith("0::")]
    assert all(ln.endswith("/ocirun/criu-ign2") for ln in mem), mem
    _wait_count(pid, _count(pid) + 2)
    for cid in ("criu-ign", "criu-ign2"):
        ocirun.ok("delete", "--force", cid)


def test_restore_runs_prestart_and_create_runtime_hooks(ocirun, make_bundle, tmp_path, criu):
    """As runc: restore runs the prestart and createRuntime hooks once the restored init's
    namespaces exist (CRIU's setup-namespaces notification), with the restored pid in their
    state; a failing hook fails the restore, which leaves nothing behind."""
    log = tmp_path / "hooklog"

    def hook(name):
        return {"path": "/bin/sh", "args": ["sh", "-c", f"read s; echo {name} \"$s\" >> {log}"]}
    b = make_bundle(args=COUNTER)
    b.config["hooks"] = {"prestart": [hook("prestart")], "createRuntime": [hook("cr")]}
    b.write()
    Piped(ocirun, tmp_path, "run", "-d", "-b", b.path, "criu-hooks").check().close()
    _wait_count(_pid(ocirun, "criu-hooks"), 2)
    assert [x.split()[0] for x in log.read_text().splitlines()] == ["prestart", "cr"]
    log.unlink()
    ocirun.ok("checkpoint", "--image-path", tmp_path / "img", "criu-hooks")
    assert not log.exists()                       # checkpoint runs no hook
    out = Piped(ocirun, tmp_path, "restore", "-d", "--image-path", tmp_path / "img",
                "-b", b.path, "criu-hooks").check()
    pid = _pid(ocirun, "criu-hooks")
    lines = log.read_text().splitlines()
    assert [x.split()[0] for x in lines] == ["prestart", "cr"]
    import json
    for x in lines:
        st = json.loads(x.split(None, 1)[1])
        assert st["pid"] == pid and st["id"] == "criu-hooks" and st["status"] == "creating"
    n = _wait_count(pid, 0)
    _wait_count(pid, n)                           # the restored counter counts on
    out.close()
    ocirun.ok("checkpoint", "--image-path", tmp_path / "img2", "criu-hooks")
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    b.write()
    p = Piped(ocirun, tmp_path, "restore", "-d", "--image-path", tmp_path / "img2",
              "-b", b.path, "criu-hooks")
    p.close()
    assert p.returncode == 1 and "createRuntime hook #0" in p.stderr, p.stderr
    assert "criu-hooks" not in ocirun.ids() and _cgroup_gone("criu-hooks")


def test_checkpoint_of_a_container_at_its_pids_limit(ocirun, make_bundle, tmp_path, criu):
    """criu joins only the container's memory and blkio cgroups (its page cache and I/O are
    the container's), not pids: at its pids limit the container is still dumped (criu in
    its pids cgroup could not fork: "fork() failed: Resource temporarily unavailable")."""
    b = make_bundle(args=["sh", "-c", "while true; do sleep 0.05; done"])
    b.linux.setdefault("resources", {})["pids"] = {"limit": 3}
    b.write()
    Piped(ocirun, tmp_path, "run", "-d", "-b", b.path, "criu-pids").check().close()
    time.sleep(0.2)
    ocirun.ok("checkpoint", "--leave-running", "--image-path", tmp_path / "img", "criu-pids")
    assert ocirun.state("criu-pids")["status"] == "running"
    assert os.path.exists(tmp_path / "img" / "inventory.img")
    ocirun.ok("delete", "--force", "criu-pids")


def test_criu_is_born_in_the_containers_memory_and_blkio_cgroups(ocirun, make_bundle, tmp_path,
                                                                  criu):
    """criu swrk is spawned (vfork + exec) while this process visits the container's v1
    memory and blkio cgroups through ``tasks``: criu starts there, this process is back in
    its own cgroups afterwards (else delete could not remove the container's), and
    criu's other hierarchies stay the caller's (pids: the limit test above)."""
    from ociruntime import criu_rpc
    b = make_bundle(args=["sleep", "60"])
    Piped(ocirun, tmp_path, "run", "-d", "-b", b.path, "criu-born").check().close()
    try:
        assert ocirun.state("criu-born")["status"] == "running"
        with open(os.path.join(ocirun.root, "criu-born", "state.json")) as f:
            cg = json.load(f)["cgroup"]
        if cg.get("mode") == "v2":
            pytest.skip("pure cgroup v2 host: criu joins no cgroup of the container")
        join = criu_rpc.criu_cgroups(cg, only=criu_rpc.CRIU_JOINS)
        assert set(join) == {"memory", "blkio"} & set(cg["paths"])

        def rows(pid):
            with open(f"/proc/{pid}/cgroup") as f:
                return {c: rel for _n, cs, rel in
                        (ln.rstrip("\n").split(":", 2) for ln in f) for c in cs.split(",")}
        mine = rows("self")
        w = criu_rpc.Swrk(criu, join=join, quiet=True)
        try:
            theirs = rows(w.pid)
        finally:
            w.close()
        assert rows("self") == mine
        for ctrl, d in join.items():
            assert d.endswith(theirs[ctrl]) and theirs[ctrl] != mine[ctrl], (ctrl, theirs)
        assert theirs["pids"] == mine["pids"]
        # a directory that is gone (a container being deleted) is not joined, not an error
        w = criu_rpc.Swrk(criu, join={"memory": join["memory"] + "-gone"}, quiet=True)
        try:
            assert rows(w.pid)["memory"] == mine["memory"]
        finally:
            w.close()
    finally:
        ocirun.ok("delete", "--force", "criu-born")
