"""Terminals: a pty allocated inside the container's devpts; its master goes to the console
socket in exactly one sendmsg with one SCM_RIGHTS fd (payload: the pty's name); the slave
becomes stdin/stdout/stderr and the controlling tty. Imported only when process.terminal."""
import array
import fcntl
from .. import osfast as os
import socket
import struct
import termios

from ..errors import SetupError

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414


def connect_console_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise SetupError(f"connect to console socket {path}: {e.strerror}") from None
    return s.detach()


def open_pty():
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]
    name = f"/dev/pts/{n}"
    slave = os.open(name, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    st = os.fstat(slave)
    if os.major(st.st_rdev) != 136:
        raise SetupError(f"{name} is not a pty slave")
    return master, slave, name


def send_fd(sock_fd, fd, name):
    s = socket.socket(fileno=sock_fd)
    try:
        s.sendmsg([name.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                     array.array("i", [fd]))])
    finally:
        s.close()


def set_winsize(fd, rows, cols):
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def setup_console(console_fd, size=None, bind_console=None):
    """In the init, after pivot_root: allocate, send the master, make the slave our tty and
    (``bind_console``) bind it onto /dev/console without following symlinks."""
    master, slave, name = open_pty()
    if bind_console is not None:
        bind_console(slave)
    if size:
        set_winsize(slave, size[0], size[1])
    send_fd(console_fd, master, name)
    os.close(master)
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(slave)
    termios  # imported before pivot_root for relays
