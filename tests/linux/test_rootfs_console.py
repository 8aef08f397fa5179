"""rootfs.console(): the pty slave bound onto /dev/console, never through a symlink
(CVE-2025-52565, crun CVE-2026-88264). Runs rootfs.console() in a forked child that has its own
mount namespace and is chrooted into a test rootfs (what the init looks like after pivot_root)."""
import os
import stat

import pytest

from ociruntime.linux import rootfs
from ociruntime.linux import syscalls as sc

from helpers import need_root


def in_child(root, fn):
    """Run fn() in a child in a private mount namespace chrooted at root; returns its output
    (or "ERR <message>")."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            sc.unshare(sc.CLONE_NEWNS)
            sc.mount(None, "/", None, sc.MS_SLAVE | sc.MS_REC)
            sc.mount("devpts", os.path.join(root, "dev/pts"), "devpts", 0,
                     "newinstance,ptmxmode=0666")
            os.chroot(root)
            os.chdir("/")
            out = fn()
        except BaseException as e:  # noqa: B036 - everything goes back to the test
            out = f"ERR {e}"
        os.write(w, str(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return data.decode()


def console_kind():
    st = os.stat("/dev/console")
    return f"{stat.S_ISCHR(st.st_mode)} {os.major(st.st_rdev)}"


def bind_new_pty():
    """In the child: a pty from a devpts of its own mount namespace (as the init's is)."""
    master, slave = os.openpty()
    rootfs.console(slave)
    return console_kind()


@pytest.fixture
def croot(tmp_path):
    need_root()
    root = tmp_path / "root"
    (root / "dev" / "pts").mkdir(parents=True)
    os.symlink("pts/ptmx", root / "dev" / "ptmx")
    victim = tmp_path / "victim"
    victim.write_text("host\n")
    os.chown(victim, 1234, 1234)
    return root, victim


def test_console_from_slave_fd(croot):
    root, _ = croot
    out = in_child(str(root), bind_new_pty)
    assert out == "True 136"


def test_console_symlink_in_image_is_replaced_not_followed(croot):
    root, victim = croot
    os.symlink(str(victim), root / "dev" / "console")
    st0 = os.stat(victim)
    out = in_child(str(root), bind_new_pty)
    assert out == "True 136"
    st1 = os.stat(victim)
    assert (st1.st_uid, st1.st_mode, victim.read_text()) == (st0.st_uid, st0.st_mode, "host\n")


def test_console_source_path_symlink_refused(croot):
    root, victim = croot
    os.mkdir(root / "evil")
    os.symlink("/proc/sys/kernel/core_pattern", root / "evil" / "0")
    out = in_child(str(root), lambda: rootfs.console("/evil/0"))
    assert out.startswith("ERR /dev/console:"), out


def test_console_source_not_a_pty_refused(croot):
    root, _ = croot
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        out = in_child(str(root), lambda: rootfs.console(fd))
    finally:
        os.close(fd)
    assert out.startswith("ERR /dev/console:") and "not a pty slave" in out


def test_console_from_slave_path(croot):
    root, _ = croot

    def fn():
        master, slave = os.openpty()
        rootfs.console(os.ttyname(slave))
        return console_kind()
    assert in_child(str(root), fn) == "True 136"
