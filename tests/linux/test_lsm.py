"""AppArmor/SELinux: this host has neither, so a label asked for must be refused clearly and
leave nothing behind; the label writer must refuse anything that is not procfs."""
import os

import pytest

from ociruntime.errors import SetupError
from ociruntime.linux import lsm


@pytest.mark.parametrize("field,where,value,needle", [
    ("apparmorProfile", "process", "docker-default", "AppArmor is not enabled"),
    ("selinuxLabel", "process", "system_u:system_r:container_t:s0", "SELinux is not enabled"),
    ("mountLabel", "linux", "system_u:object_r:container_file_t:s0", "SELinux is not enabled"),
])
def test_label_without_lsm_is_refused(ocirun, make_bundle, field, where, value, needle):
    if (field == "apparmorProfile" and lsm.apparmor_enabled()) or \
            (field != "apparmorProfile" and lsm.selinux_enabled()):
        pytest.skip("this host has the LSM enabled")
    b = make_bundle(["true"])
    b.config[where][field] = value
    b.write()
    p = ocirun("create", "-b", b.path, "lsm")
    assert p.returncode == 1 and needle in p.stderr and field in p.stderr
    assert p.stderr.count("\n") == 1
    assert ocirun.ids() == []


def test_features_tell_the_truth():
    f = lsm.features()
    assert f["apparmor"]["enabled"] == lsm.apparmor_enabled()
    assert f["selinux"]["enabled"] == lsm.selinux_enabled()


def test_cve_2019_16884_fake_proc_refused(tmp_path):
    # an image volume over /proc with fake attr files: the writer must refuse it
    d = tmp_path / "thread-self" / "attr" / "apparmor"
    d.mkdir(parents=True)
    (d / "exec").write_text("")
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(SetupError, match="not on procfs"):
            lsm.write_exec_label("apparmor", "unconfined", fd)
    finally:
        os.close(fd)
    assert (d / "exec").read_text() == ""


def test_exec_attr_paths():
    assert lsm.exec_attr("apparmor", "p") == ("thread-self/attr/apparmor/exec", b"exec p")
    assert lsm.exec_attr("selinux", "l") == ("thread-self/attr/exec", b"l")
