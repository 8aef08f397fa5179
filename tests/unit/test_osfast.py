"""osfast (os without importing os) gives the results os and posixpath give."""
import os
import pathlib
import posixpath
import sys

import pytest

from conftest import REPO

sys.path.insert(0, REPO)
from ociruntime import osfast  # noqa: E402

PATHS = ["", ".", "..", "/", "//", "///", "a", "a/", "/a", "//a", "///a", "a//b", "a/./b",
         "a/../b", "../a", "a/b/..", "a/../..", "/..", "/../a", "//../a", "./", "a/b/c/",
         "/a/b/../../..", "a/.b/..c/...", "ä/ö", "a\\b", "/x//y/.//z/../w/"]


@pytest.mark.parametrize("p", PATHS)
def test_path_functions_agree_with_posixpath(p):
    for name in ("dirname", "basename", "normpath", "abspath", "isabs"):
        assert getattr(osfast.path, name)(p) == getattr(posixpath, name)(p), (name, p)
        assert getattr(osfast.path, name)(p.encode()) == getattr(posixpath, name)(p.encode())
    for q in PATHS:
        assert osfast.path.join(p, q) == posixpath.join(p, q), (p, q)
        assert osfast.path.join(p, q, "z") == posixpath.join(p, q, "z"), (p, q)
        if p:
            assert osfast.path.relpath(p, q or None) == posixpath.relpath(p, q or None), (p, q)
    if not p:
        with pytest.raises(ValueError):
            osfast.path.relpath(p)


def test_file_tests_agree(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "l").symlink_to("f")
    (tmp_path / "dangling").symlink_to("nowhere")
    for name in ("f", "d", "l", "dangling", "missing", "f/x", "d/../f"):
        p = str(tmp_path / name)
        for fn in ("exists", "isdir", "isfile", "islink"):
            assert getattr(osfast.path, fn)(p) == getattr(posixpath, fn)(p), (fn, name)
    assert osfast.path.exists(tmp_path) and osfast.path.isdir(pathlib.Path(tmp_path))
    assert osfast.path.join(tmp_path, "f") == os.path.join(tmp_path, "f")
    assert not osfast.path.exists("a\0b") and not osfast.path.isdir("a\0b")


def test_posix_names_are_os_names_and_the_rest_comes_from_os():
    for name in ("open", "close", "read", "write", "stat", "fork", "waitpid", "kill",
                 "posix_spawn", "O_CLOEXEC", "O_PATH", "WNOHANG", "X_OK", "_exit",
                 "pidfd_open", "memfd_create"):
        assert getattr(osfast, name) is getattr(os, name), name
    assert osfast.removedirs is os.removedirs and osfast.environ is os.environ
    assert osfast.path.commonpath is posixpath.commonpath


def test_getenv_and_exec_environ(monkeypatch):
    monkeypatch.setenv("OSFAST_TEST", "v\u00e9")
    # os is loaded in the test process: its (changed) environ is the truth
    assert osfast.getenv("OSFAST_TEST") == "v\u00e9" and osfast.getenv("OSFAST_NONE", 3) == 3
    assert osfast.exec_environ() is os.environ


def test_without_os_loaded():
    """In a fresh interpreter (``-I -S``, as the launcher): osfast alone does not load os,
    getenv reads the process's environment, and the first name osfast lacks loads it."""
    import subprocess
    code = ("import sys; sys.path[:0] = [%r]; from ociruntime import osfast\n"
            "print(osfast.getenv('OSFAST_TEST'), osfast.getenv('OSFAST_NONE', 'd'),\n"
            "      osfast.path.join('a', 'b'), 'os' in sys.modules,\n"
            "      type(osfast.exec_environ()).__name__)\n"
            "osfast.environ\n"
            "print('os' in sys.modules, osfast.exec_environ() is sys.modules['os'].environ)"
            % REPO)
    p = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                       text=True, env={"OSFAST_TEST": "x\u00e9", "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:2] == ["x\u00e9 d a/b False dict", "True True"]


def test_makedirs(tmp_path):
    osfast.makedirs(str(tmp_path / "a/b/c"), 0o700)
    assert (tmp_path / "a/b/c").is_dir() and (tmp_path / "a/b/c").stat().st_mode & 0o777 == 0o700
    osfast.makedirs(str(tmp_path / "a/b/c/"), exist_ok=True)
    with pytest.raises(FileExistsError):
        osfast.makedirs(str(tmp_path / "a/b"))
    (tmp_path / "f").write_text("")
    with pytest.raises(FileExistsError):
        osfast.makedirs(str(tmp_path / "f"), exist_ok=True)
    with pytest.raises(NotADirectoryError):
        osfast.makedirs(str(tmp_path / "f/x"))
    with pytest.raises(NotADirectoryError):
        os.makedirs(str(tmp_path / "f/x"))
