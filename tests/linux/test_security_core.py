"""CVE regression tests owned by the core (see /work/shared/docs/security.md)."""
import os
import random
import signal
import subprocess
import time

import pytest

from helpers import OCIRUN


def _wait_created(ocirun, cid, proc=None):
    for _ in range(500):
        p = ocirun("state", cid)
        if p.returncode == 0 and '"created"' in p.stdout:
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def test_cve_2024_21626_init_fds_allow_list(ocirun, make_bundle):
    b = make_bundle(["true"])
    ocirun.ok("create", "-b", b.path, "fds")
    pid = ocirun.state("fds")["pid"]
    fds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        fds[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
    extra = {fd: t for fd, t in fds.items() if fd > 2}
    # only the exec fifo may be open beyond stdio while the init waits for start
    assert len(extra) == 1, fds
    assert list(extra.values())[0].endswith("/fds/exec.fifo"), fds
    ocirun.ok("delete", "fds")


def test_preserve_fds(ocirun, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "ls /proc/self/fd; cat <&3"])
    f = tmp_path / "data"
    f.write_text("preserved-content\n")
    p = subprocess.run(["sh", "-c", f'exec 3<"{f}"; exec "$@"', "sh", OCIRUN, "--root",
                        ocirun.root, "run", "--preserve-fds", "1", "-b", b.path, "pf"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "preserved-content" in p.stdout
    listed = sorted(int(x) for x in p.stdout.split()[:-1] if x.isdigit())
    assert listed == [0, 1, 2, 3, 4], p.stdout  # 4 = ls's own directory fd


@pytest.mark.parametrize("n", range(3, 21))
def test_cve_2024_21626_cwd_proc_self_fd_refused(ocirun, make_bundle, n):
    b = make_bundle(["pwd"])
    b.process["cwd"] = f"/proc/self/fd/{n}"
    b.write()
    p = ocirun("run", "-b", b.path, f"cwd{n}")
    assert p.returncode != 0, p.stdout
    assert "chdir" in p.stderr or "outside" in p.stderr
    assert ocirun.ids() == []


def test_cwd_inside_rootfs(ocirun, make_bundle):
    b = make_bundle(["pwd"])
    b.process["cwd"] = "/tmp"
    b.write()
    p = ocirun("run", "-b", b.path, "cwdok")
    assert p.returncode == 0 and p.stdout == "/tmp\n"


def test_cve_2022_29162_no_inheritable_or_ambient_caps(ocirun, make_bundle):
    b = make_bundle(["sh", "-c", "grep -E 'Cap(Inh|Amb|Eff|Bnd)' /proc/self/status"])
    p = ocirun("run", "-b", b.path, "caps")
    caps = dict(line.split(":\t") for line in p.stdout.splitlines())
    assert int(caps["CapInh"], 16) == 0 and int(caps["CapAmb"], 16) == 0
    # CAP_AUDIT_WRITE(29) KILL(5) NET_BIND_SERVICE(10)
    want = (1 << 29) | (1 << 5) | (1 << 10)
    assert int(caps["CapEff"], 16) == want and int(caps["CapBnd"], 16) == want


def test_capabilities_for_non_root_user(ocirun, make_bundle):
    b = make_bundle(["sh", "-c", "id -u; id -g; id -G; grep CapEff /proc/self/status; "
                     "grep CapBnd /proc/self/status"])
    b.process["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 100]}
    b.write()
    p = ocirun("run", "-b", b.path, "nonroot")
    lines = p.stdout.split("\n")
    assert lines[:2] == ["1000", "1000"], p.stdout + p.stderr
    assert set(lines[2].split()) == {"1000", "10", "100"}
    # non-root without ambient caps: execve clears the effective set (as with runc)
    assert int(lines[3].split()[1], 16) == 0
    assert int(lines[4].split()[1], 16) == (1 << 29) | (1 << 5) | (1 << 10)


def test_username_from_container_passwd(ocirun, make_bundle):
    b = make_bundle(["id", "-u"])
    b.process["user"] = {"uid": 0, "gid": 0, "username": "tester"}
    b.write()
    p = ocirun("run", "-b", b.path, "uname")
    assert p.stdout.strip() == "1000"


def test_cve_2019_5736_no_host_binary_visible(ocirun, make_bundle):
    # every process the container can see runs the container's own program
    b = make_bundle(["sh", "-c", "for p in /proc/[0-9]*; do readlink $p/exe; done"])
    p = ocirun("run", "-b", b.path, "exe")
    exes = set(p.stdout.split())
    assert exes == {"/bin/busybox"}, p.stdout + p.stderr


def test_cve_2019_5736_proc_self_exe_entrypoint(ocirun, make_bundle):
    # an entrypoint pointing at /proc/self/exe re-executes the container's own program,
    # never the host interpreter
    b = make_bundle(["/proc/self/exe", "echo", "ok"])
    p = ocirun("run", "-b", b.path, "selfexe")
    assert p.stdout.strip() in ("", "ok")
    assert "Python" not in p.stdout + p.stderr


def test_init_is_not_dumpable_while_waiting(ocirun, make_bundle):
    # /proc/<pid>/ files of a non-dumpable process are owned by root:root; a dumpable init
    # of a uid 1000 container would show its own uid — test with a user namespace mapping
    b = make_bundle(["true"])
    ocirun.ok("create", "-b", b.path, "dump")
    pid = ocirun.state("dump")["pid"]
    # ptrace attach from an unprivileged uid must be refused (it would be allowed for a
    # dumpable process of the same uid; the init runs as uid 0 so use the environ check)
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    assert "Uid:\t0" in status
    # kernel exposes dumpability through /proc/<pid>/ ownership semantics for the mm:
    # the init's exe link must not be readable by a different unprivileged user
    r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                        "readlink", f"/proc/{pid}/exe"], capture_output=True, text=True)
    assert r.returncode != 0
    ocirun.ok("delete", "dump")


def test_sigkill_create_at_random_points_then_delete_force(ocirun, make_bundle):
    b = make_bundle(["sleep", "30"])
    rng = random.Random(1234)
    for i in range(8):
        cid = f"kc{i}"
        p = subprocess.Popen([OCIRUN, "--root", ocirun.root, "create", "-b", b.path, cid],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 0.04))
        p.send_signal(signal.SIGKILL)
        p.wait()
        r = ocirun("delete", "--force", cid)
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(os.path.join(ocirun.root, cid))
    # no container process survives
    out = subprocess.run(["pgrep", "-f", "sleep 30"], capture_output=True, text=True).stdout
    for pid in out.split():
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert b.path.encode() not in f.read()
