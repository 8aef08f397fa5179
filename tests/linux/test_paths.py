"""Confined resolution (ociruntime.linux.paths) against hostile trees, directly: every path
resolves and every created inode lands inside the root, whatever the symlinks say."""
import os

import pytest

from ociruntime.linux import paths


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (r / "etc").mkdir()
    os.symlink("/", r / "abs")                       # absolute: clamped to the root
    os.symlink("../../../../../..", r / "up")        # climbing: clamped
    os.symlink(str(outside), r / "hostdir")          # a host path: means <root><host path>
    os.symlink("/proc/self/root", r / "magic")       # to a magic link
    os.symlink("nowhere/deeper", r / "dangling")
    fd = paths.open_root(str(r))
    yield r, fd, outside
    os.close(fd)


def where(fd):
    return paths.fd_path(fd)


def test_clean():
    assert paths.clean("/") == ""
    assert paths.clean("/a/../../b/./c//") == "b/c"
    assert paths.clean("../../x") == "x"


@pytest.mark.parametrize("path,expect", [("/abs/etc", "etc"), ("/up/etc", "etc"),
                                         ("/abs/up/abs/etc", "etc"), ("/../../etc", "etc")])
def test_resolve_clamps_to_root(root, path, expect):
    r, fd, _ = root
    t = paths.resolve(fd, path)
    try:
        assert where(t) == str(r / expect)
    finally:
        os.close(t)


def test_magic_links_refused(root):
    _, fd, _ = root
    with pytest.raises(OSError):
        os.close(paths.resolve(fd, "/magic/etc"))


@pytest.mark.parametrize("path", ["/abs/new1/new2", "/up/new1/new2", "/hostdir/new1/new2"])
def test_mkdir_all_creates_inside(root, path):
    r, fd, outside = root
    if path.startswith("/hostdir"):
        # <root>/<outside path> does not exist: the host dir must not be used instead
        with pytest.raises(OSError):
            os.close(paths.mkdir_all(fd, path))
        assert os.listdir(outside) == []
        return
    t = paths.mkdir_all(fd, path)
    try:
        assert where(t) == str(r / "new1" / "new2")
    finally:
        os.close(t)
    assert os.listdir(outside) == []


def test_mkdir_all_through_host_path_symlink_when_it_exists_inside(root):
    r, fd, outside = root
    os.makedirs(str(r) + str(outside))
    t = paths.mkdir_all(fd, "/hostdir/sub")
    try:
        assert where(t) == str(r) + str(outside) + "/sub"
    finally:
        os.close(t)
    assert os.listdir(outside) == []


def test_dangling_symlink_is_not_created_through(root):
    r, fd, _ = root
    with pytest.raises(OSError):
        os.close(paths.mkdir_all(fd, "/dangling/x"))
    assert not (r / "nowhere").exists()


def test_create_file_inside(root):
    r, fd, outside = root
    t = paths.create_file(fd, "/abs/up/etc/newfile")
    try:
        assert where(t) == str(r / "etc" / "newfile")
    finally:
        os.close(t)
    assert (r / "etc" / "newfile").is_file()


def test_mount_target_ordinary_refuses_symlinks(root):
    r, fd, _ = root
    os.symlink("/etc", r / "proc")
    with pytest.raises(OSError, match="must be mounted on ordinary directory"):
        paths.mount_target(fd, "/proc", True, ordinary=True)
    with pytest.raises(OSError, match="must be mounted on ordinary directory"):
        paths.mount_target(fd, "/abs/sys", True, ordinary=True)
    t = paths.mount_target(fd, "/sys", True, ordinary=True)   # created, plain
    try:
        assert where(t) == str(r / "sys")
    finally:
        os.close(t)


def test_mount_target_file_vs_dir(root):
    r, fd, _ = root
    t = paths.mount_target(fd, "/a/b/file", False)
    os.close(t)
    t = paths.mount_target(fd, "/a/b/dir", True)
    os.close(t)
    assert (r / "a" / "b" / "file").is_file() and (r / "a" / "b" / "dir").is_dir()
