"""Foreground ``run -t`` / ``exec -t`` without a console socket: the runtime holds the pty
master itself and relays it to the caller's terminal, as ``docker run -it`` does.

- The master arrives over a private socketpair (the same one-sendmsg protocol as a console
  socket: ``ConsolePair``), so the container side is identical with and without a socket.
- stdin is put in raw mode when it is a tty (restored on every exit path); keys such as ^C
  and ^Z go through the pty, whose line discipline turns them into signals for the
  container's foreground process group.
- The window size is copied from the caller's terminal at start and on every SIGWINCH.
- stdin → master and master → stdout until the process exits (pidfd), then the master is
  drained. Input that the pty cannot take yet is kept, never blocks output.
- stdin at EOF that is not a tty sends the terminal's EOF character (^D), as a user would.
The caller waits for the exit status afterwards."""
from .. import osfast as os
import _signal as signal

from . import syscalls as sc

TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414


class ConsolePair:
    """A socketpair standing in for ``--console-socket``: ``child_fd()`` (called lazily, only
    when the process really has a terminal) is the end the container side sends the master
    over; ``recv_master()`` receives it. Uses ``_socket`` (the C module): no ``socket`` import
    when no terminal is involved."""

    def __init__(self, min_fd=3):
        self.ours = None
        self.min_fd = min_fd

    def child_fd(self):
        import _socket
        from .syscalls import above
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self.ours = a
        return above(b.detach(), self.min_fd)

    @property
    def used(self):
        return self.ours is not None

    def recv_master(self):
        fd = recv_fd(self.ours)
        self.ours.close()
        self.ours = None
        return fd

    def close(self):
        if self.ours is not None:
            self.ours.close()
            self.ours = None


def recv_fd(sock):
    """The one fd sent with SCM_RIGHTS on ``sock`` (a _socket.socket)."""
    import _socket
    import array
    fds = array.array("i")
    msg, anc, _flags, _addr = sock.recvmsg(4096, _socket.CMSG_SPACE(fds.itemsize))
    for level, typ, data in anc:
        if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    if not fds:
        raise OSError(71, "no pty master received from the container")  # EPROTO
    for extra in fds[1:]:
        os.close(extra)
    os.set_inheritable(fds[0], False)
    return fds[0]


def copy_winsize(src, master):
    import fcntl
    try:
        ws = fcntl.ioctl(src, TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return False
    fcntl.ioctl(master, TIOCSWINSZ, ws)
    return True


def relay(master, pid, stdin=0, stdout=1):
    """Relay until process ``pid`` exits; returns nothing (the caller reaps ``pid``)."""
    import gc
    gc.enable()   # long-lived: entry() turned the cycle collector off for start-up
    import select
    import termios
    saved = None
    tty_in = os.isatty(stdin)
    if tty_in:
        import tty
        saved = termios.tcgetattr(stdin)
        tty.setraw(stdin, termios.TCSANOW)
    size_src = stdin if tty_in else (stdout if os.isatty(stdout) else None)
    old_winch = None
    if size_src is not None:
        copy_winsize(size_src, master)
        old_winch = signal.signal(signal.SIGWINCH,
                                  lambda *_: copy_winsize(size_src, master))
    os.set_blocking(master, False)
    pidfd = sc.pidfd_open(pid)
    try:
        _pump(master, pidfd, stdin, stdout, tty_in, select, termios)
    finally:
        os.close(pidfd)
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSAFLUSH, saved)


def _pump(master, pidfd, stdin, stdout, tty_in, select, termios):
    p = select.poll()
    IN, OUT = select.POLLIN, select.POLLOUT
    HUP = select.POLLHUP | select.POLLERR | select.POLLNVAL
    p.register(master, IN)
    p.register(pidfd, IN)
    try:
        p.register(stdin, IN)
    except (OSError, ValueError):
        pass
    pending = b""
    master_open = True
    while master_open:
        for fd, ev in p.poll():
            if fd == pidfd:
                _drain(master, stdout)
                return
            if fd == master:
                if ev & OUT and pending:
                    pending = pending[_write_some(master, pending):]
                    if not pending:
                        p.modify(master, IN)
                if ev & (IN | HUP):
                    try:
                        data = os.read(master, 65536)
                    except BlockingIOError:
                        continue
                    except OSError:      # EIO: every slave fd is closed
                        data = b""
                    if not data:
                        master_open = False
                        break
                    _write_all(stdout, data)
            elif fd == stdin:
                data = b""
                if ev & (IN | HUP):
                    try:
                        data = os.read(stdin, 65536)
                    except OSError:
                        data = b""
                if not data:
                    p.unregister(stdin)
                    if not tty_in:
                        try:
                            data = termios.tcgetattr(master)[6][termios.VEOF]
                        except (OSError, termios.error):
                            data = b"\x04"
                if data:
                    pending += data
                    p.modify(master, IN | OUT)
    # the slave side is gone; the process may still be running: wait for it
    p2 = select.poll()
    p2.register(pidfd, IN)
    p2.poll()


def _write_some(fd, data):
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0
    except OSError:
        return len(data)   # the pty went away: drop the input


def _write_all(fd, data):
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            import select
            select.select([], [fd], [])
            continue
        except OSError:
            return
        data = data[n:]


def _drain(master, stdout):
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        _write_all(stdout, data)
