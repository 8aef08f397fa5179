"""criu_proto: the argv -> criu_opts translation and the protobuf wire format (pure logic)."""
import pytest

from ociruntime import criu_proto as r
from ociruntime.criu import CriuError


def test_varint_roundtrip():
    for n in (0, 1, 127, 128, 300, 1 << 31, (1 << 64) - 1):
        v, i = r._read_varint(r._varint(n), 0)
        assert v == n
    # negative int32 is a 10-byte varint of its two's complement (protobuf's rule)
    assert len(r._varint(-1)) == 10


def test_from_argv_restore():
    argv = ["/criu", "restore", "--images-dir", "/img", "--work-dir", "/w", "--log-file",
            "restore.log", "-v4", "--root", "/r", "--restore-detached", "--pidfile", "/p",
            "--tcp-established", "--manage-cgroups=full", "--cgroup-root", "/ocirun/x",
            "--cgroup-root", "memory:/m/x", "--external", "mnt[/a]:/b",
            "--inherit-fd", "fd[1]:pipe:[42]", "--lsm-profile", "apparmor:p",
            "--empty-ns", "net"]
    typ, opts, images, work, fds = r.from_argv(argv)
    assert (typ, images, work, fds) == (r.RESTORE, "/img", "/w", [1])
    d = r._decode(bytes(opts))
    assert d[10] == [b"restore.log"] and d[9] == [4] and d[13] == [b"/r"]
    assert d[5] == [1] and d[34] == [4]                  # tcp_established, FULL
    roots = [r._decode(x) for x in d[25]]
    assert roots[0] == {2: [b"/ocirun/x"]}
    assert roots[1] == {1: [b"memory"], 2: [b"/m/x"]}
    assert d[37] == [b"mnt[/a]:/b"]
    assert r._decode(d[27][0]) == {1: [b"pipe:[42]"], 2: [1]}
    assert d[53] == [b"apparmor:p"] and d[38] == [r.CLONE_NEWNET]
    assert d[50] == [1] and d[12] == [1] and d[26] == [1]   # orphan pts, notify, sibling


def test_from_argv_dump_and_page_server():
    typ, opts, images, work, fds = r.from_argv(
        ["/criu", "pre-dump", "--tree", "77", "--images-dir", "/i", "--track-mem",
         "--prev-images-dir", "../p", "--page-server", "--address", "10.0.0.2", "--port",
         "27000", "--leave-running", "--status-fd", "5"])
    assert typ == r.PRE_DUMP and fds == [5]
    d = r._decode(bytes(opts))
    assert d[2] == [77] and d[15] == [1] and d[14] == [b"../p"] and d[3] == [1]
    assert r._decode(d[11][0]) == {1: [b"10.0.0.2"], 2: [27000]}
    assert 26 not in d                                    # rst_sibling only on restore


def test_unknown_option_is_an_error():
    with pytest.raises(CriuError, match="no RPC translation"):
        r.from_argv(["/criu", "dump", "--frobnicate"])
