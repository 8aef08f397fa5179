"""``os`` without importing ``os``, for the modules every short command loads.

Importing ``os`` costs 6.4 M instructions here (4 M of them its ``_collections_abc``: two
dozen abstract base classes), against 27.7 M for the whole interpreter's start: 18% of an
``ocirun state``, and time a checkpoint's criu spends waiting to be spawned. ``os``
itself is ``posix`` plus pure-Python extras. The hot-path modules import this module as
``os``: it is ``posix``'s functions and constants, ``getenv``, ``makedirs``, and the
``path`` functions they call (same results as ``posixpath`` for str and path-like arguments).
Any other name (``environ``, ``makedirs``, ``path.normpath``, ...) is looked up in the
real ``os`` (or ``posixpath``) on first use: that path pays for the import, the others do
not. ``tests/unit/test_osfast.py`` holds the two to the same results;
``tests/linux/test_hotpath_imports.py`` checks that ``start``, ``state``, ``list``,
``kill`` and ``delete`` never import ``os``.
"""
import posix as _posix
from posix import *  # noqa: F401,F403 - what os re-exports from posix

del environ  # noqa: F821 - posix's is bytes -> bytes; ``os.environ`` (str) comes from os
_exit = _posix._exit
_fspath = _posix.fspath
SEEK_SET, SEEK_CUR, SEEK_END = 0, 1, 2


def __getattr__(name):
    import os
    return getattr(os, name)


def getenv(key, default=None):
    """``os.getenv`` for str keys, from the process's initial environment (what os.environ
    starts from; this runtime changes its environment only through os.environ itself)."""
    if "os" in _sys_modules:      # os.environ may have been changed since start-up
        return _sys_modules["os"].environ.get(key, default)
    v = _posix.environ.get(key.encode("utf-8", "surrogateescape"))
    return default if v is None else v.decode("utf-8", "surrogateescape")


def makedirs(name, mode=0o777, exist_ok=False):
    """``os.makedirs`` for str paths: the missing parents (mode 0o777 less the umask), then
    ``name`` with ``mode``; an existing ``name`` is an error unless ``exist_ok`` and it is
    a directory."""
    name = _fspath(name)
    if type(name) is not str:
        import os
        return os.makedirs(name, mode, exist_ok)
    parent = path.dirname(name.rstrip("/"))
    if parent and parent != name and not path.exists(parent):
        try:
            makedirs(parent, exist_ok=True)
        except FileExistsError:      # made meanwhile by someone else
            pass
    try:
        _posix.mkdir(name, mode)
    except OSError:
        if not exist_ok or not path.isdir(name):
            raise


def exec_environ():
    """The environment to hand to ``posix_spawn``/``execve``: os.environ once os is loaded
    (it may have been changed), else the process's own (bytes, as posix takes it)."""
    m = _sys_modules.get("os")
    return m.environ if m is not None else _posix.environ


def _posixpath(name):
    import posixpath
    return getattr(posixpath, name)


def _str_path(fn):
    """``fn`` for a str path (or a path-like one); bytes go to posixpath's function of the
    same name."""
    name = fn.__name__

    def call(p):
        p = _fspath(p)
        return fn(p) if type(p) is str else _posixpath(name)(p)
    call.__name__ = name
    return staticmethod(call)


def _mode(p, follow=True):
    try:
        return _posix.stat(p, follow_symlinks=follow).st_mode
    except (OSError, ValueError):
        return None


def _is(p, fmt, follow=True):
    m = _mode(p, follow)
    return m is not None and m & 0o170000 == fmt


class _Path:
    """``os.path``: join, dirname, basename, normpath, abspath, isabs, relpath, exists,
    isdir, isfile, islink here, for str and path-like arguments; bytes and every other function go
    to posixpath."""

    @staticmethod
    def join(a, *p):
        path = _fspath(a)
        if type(path) is not str:
            return _posixpath("join")(a, *p)
        for b in p:
            b = _fspath(b)
            if b.startswith("/"):
                path = b
            elif not path or path.endswith("/"):
                path += b
            else:
                path += "/" + b
        return path

    @_str_path
    def dirname(p):
        i = p.rfind("/") + 1
        head = p[:i]
        if head and head != "/" * len(head):
            head = head.rstrip("/")
        return head

    @_str_path
    def basename(p):
        return p[p.rfind("/") + 1:]

    @_str_path
    def normpath(p):
        """Lexically: no "." or empty components, ".." folded into its parent (never above
        "/"), one leading "/" (exactly two are kept, as POSIX leaves them to the
        implementation), "." for nothing."""
        if not p:
            return "."
        lead = len(p) - len(p.lstrip("/"))
        lead = 2 if lead == 2 else min(lead, 1)
        parts = []
        for c in p.split("/"):
            if c == "" or c == ".":
                continue
            if c == "..":
                if parts and parts[-1] != "..":
                    parts.pop()
                    continue
                if lead:
                    continue
            parts.append(c)
        return ("/" * lead + "/".join(parts)) or "."

    @_str_path
    def abspath(p):
        if not p.startswith("/"):
            p = _Path.join(_posix.getcwd(), p)
        return _Path.normpath(p)

    @_str_path
    def isabs(p):
        return p.startswith("/")

    @staticmethod
    def relpath(p, start=None):
        p = _fspath(p)
        start = "." if start is None else _fspath(start)
        if type(p) is not str or type(start) is not str:
            return _posixpath("relpath")(p, start)
        if not p:
            raise ValueError("no path specified")
        a = [x for x in _Path.abspath(start).split("/") if x]
        b = [x for x in _Path.abspath(p).split("/") if x]
        n = 0
        while n < len(a) and n < len(b) and a[n] == b[n]:
            n += 1
        return "/".join([".."] * (len(a) - n) + b[n:]) or "."

    @staticmethod
    def exists(p):
        return _mode(p) is not None

    @staticmethod
    def isdir(p):
        return _is(p, 0o040000)

    @staticmethod
    def isfile(p):
        return _is(p, 0o100000)

    @staticmethod
    def islink(p):
        return _is(p, 0o120000, follow=False)

    def __getattr__(self, name):
        return _posixpath(name)


path = _Path()
_sys_modules = __import__("sys").modules
