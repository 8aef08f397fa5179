"""Mount option parsing (pure logic)."""
import pytest

from ociruntime.errors import ConfigError
from ociruntime.linux import mountopts as mo
from ociruntime.linux import syscalls as sc


def test_plain_flags_and_data_in_order():
    o = mo.parse(["nosuid", "strictatime", "mode=755", "size=65536k", "newinstance"], "mounts[1]")
    assert not o.bind
    assert o.attr_set == sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_STRICTATIME
    assert o.attr_clr & sc.MOUNT_ATTR__ATIME
    assert o.data == ["mode=755", "size=65536k", "newinstance"]
    assert mo.split_data(o.data) == (["newinstance"], [("mode", "755"), ("size", "65536k")])


@pytest.mark.parametrize("opt,bit", [("ro", sc.MOUNT_ATTR_RDONLY), ("nosuid", sc.MOUNT_ATTR_NOSUID),
                                     ("nodev", sc.MOUNT_ATTR_NODEV),
                                     ("noexec", sc.MOUNT_ATTR_NOEXEC),
                                     ("nodiratime", sc.MOUNT_ATTR_NODIRATIME),
                                     ("nosymfollow", sc.MOUNT_ATTR_NOSYMFOLLOW)])
def test_flag_and_its_negation(opt, bit):
    neg = {"ro": "rw", "nosymfollow": "symfollow", "nodiratime": "diratime"}.get(opt, opt[2:])
    o = mo.parse([opt])
    assert o.attr_set == bit and o.attr_clr == 0
    o = mo.parse([opt, neg])
    assert o.attr_set == 0 and o.attr_clr == bit      # last one wins, and clears explicitly
    o = mo.parse(["r" + opt])
    assert o.rattr_set == bit and o.attr_set == 0
    o = mo.parse(["r" + neg])
    assert o.rattr_clr == bit and o.rattr_set == 0


def test_readonly_property():
    assert mo.parse(["ro"]).readonly
    assert mo.parse(["rro"]).readonly
    assert not mo.parse(["ro", "rw"]).readonly


@pytest.mark.parametrize("opts,mode", [(["noatime"], sc.MOUNT_ATTR_NOATIME),
                                       (["relatime"], sc.MOUNT_ATTR_RELATIME),
                                       (["strictatime"], sc.MOUNT_ATTR_STRICTATIME),
                                       (["noatime", "atime"], sc.MOUNT_ATTR_RELATIME),
                                       (["noatime", "strictatime"], sc.MOUNT_ATTR_STRICTATIME)])
def test_atime_is_one_mode(opts, mode):
    o = mo.parse(opts)
    assert o.attr_set & sc.MOUNT_ATTR__ATIME == mode
    assert o.attr_clr & sc.MOUNT_ATTR__ATIME == sc.MOUNT_ATTR__ATIME


def test_no_atime_option_leaves_atime_alone():
    o = mo.parse(["nosuid"])
    assert o.attr_clr & sc.MOUNT_ATTR__ATIME == 0


def test_recursive_atime():
    o = mo.parse(["rnoatime"])
    assert o.rattr_set == sc.MOUNT_ATTR_NOATIME and o.rattr_clr == sc.MOUNT_ATTR__ATIME


def test_bind_rbind():
    assert mo.parse(["bind"]).bind and not mo.parse(["bind"]).recursive
    o = mo.parse(["rbind", "ro"])
    assert o.bind and o.recursive and o.attr_set == sc.MOUNT_ATTR_RDONLY
    assert mo.parse([], mtype="bind").bind


def test_propagation_in_order():
    o = mo.parse(["rshared", "private", "slave", "runbindable"])
    assert o.propagation == [(sc.MS_SHARED, True), (sc.MS_PRIVATE, False), (sc.MS_SLAVE, False),
                             (sc.MS_UNBINDABLE, True)]


def test_superblock_flags():
    o = mo.parse(["sync", "dirsync", "lazytime", "nolazytime", "mand"])
    assert o.sb_flags == ["sync", "dirsync", "mand"]
    assert mo.parse(["sync", "async"]).sb_flags == []


def test_unknown_options_are_filesystem_data_and_x_options_dropped():
    o = mo.parse(["whatever", "uid=5", "x-systemd.automount", "defaults", "remount"])
    assert o.data == ["whatever", "uid=5"]


def test_idmap():
    o = mo.parse(["bind", "idmap"])
    assert o.idmap and not o.ridmap
    o = mo.parse(["rbind", "ridmap"])
    assert o.idmap and o.ridmap
    with pytest.raises(ConfigError, match=r"mounts\[3\].options: idmap"):
        mo.parse(["idmap"], "mounts[3]", "tmpfs")


def test_bad_options_name_the_field():
    with pytest.raises(ConfigError, match=r"^mounts\[2\].options\[1\]: empty mount option"):
        mo.parse(["ro", ""], "mounts[2]")
    with pytest.raises(ConfigError, match=r"^mounts\[0\].options\[0\]: must be a string"):
        mo.parse([5], "mounts[0]")


def test_root_propagation():
    assert mo.parse_propagation(None) is None
    assert mo.parse_propagation("") is None
    assert mo.parse_propagation("rslave") == (sc.MS_SLAVE, True)
    assert mo.parse_propagation("private") == (sc.MS_PRIVATE, False)
    with pytest.raises(ConfigError, match='^linux.rootfsPropagation: unknown propagation "x"'):
        mo.parse_propagation("x")


def test_tmpcopyup_only_on_tmpfs():
    assert mo.parse(["tmpcopyup"], "m", "tmpfs").tmpcopyup
    assert mo.parse(["notmpcopyup"], "m", "tmpfs").data == []
    with pytest.raises(ConfigError, match=r"^mounts\[1\].options: tmpcopyup"):
        mo.parse(["tmpcopyup"], "mounts[1]", "proc")
    with pytest.raises(ConfigError, match="tmpcopyup"):
        mo.parse(["bind", "tmpcopyup"], "mounts[1]", "tmpfs")
