"""Pure logic of exec: --user parsing, --cgroup selection, options ending at the id."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from ociruntime.cli.commands import COMMANDS  # noqa: E402
from ociruntime.cli.parser import parse_flags  # noqa: E402
from ociruntime.errors import OciError, SetupError  # noqa: E402
from ociruntime.linux.exec import cgroup_dirs, state_cgroup_dirs  # noqa: E402
from ociruntime.linux.user import lookup, lookup_group, parse_user_arg  # noqa: E402


@pytest.mark.parametrize("arg,want", [
    ("1", (1, None, None, None)),          # crun CVE-2026-30892: uid 1 is 1, never 0
    ("0", (0, None, None, None)),
    ("1:2", (1, 2, None, None)),
    ("0:0", (0, 0, None, None)),
    ("name", (None, None, "name", None)),
    ("name:group", (None, None, "name", "group")),
    ("1000:group", (1000, None, None, "group")),
    ("name:5", (None, 5, "name", None)),
    ("4294967294", (4294967294, None, None, None)),
])
def test_parse_user_arg(arg, want):
    assert parse_user_arg(arg) == want


@pytest.mark.parametrize("arg", ["", ":", "1:", ":2", "-1", "1:-2", "4294967295", "a b",
                                 "../x", "1:2:3x"])
def test_parse_user_arg_rejects(arg):
    with pytest.raises(OciError):
        parse_user_arg(arg)


def test_lookup_in_container_files(tmp_path):
    (tmp_path / "passwd").write_text("root:x:0:0::/root:/bin/sh\nweb:x:33:44::/:/bin/sh\n")
    (tmp_path / "group").write_text("root:x:0:\nwww:x:55:web\n")
    assert lookup("web", str(tmp_path / "passwd")) == (33, 44)
    assert lookup_group("www", str(tmp_path / "group")) == 55
    assert lookup_group("7", str(tmp_path / "group")) == 7
    with pytest.raises(SetupError, match="unable to find group nope"):
        lookup_group("nope", str(tmp_path / "group"))


def test_cgroup_sub_selection(tmp_path):
    dirs = {}
    for k in ("memory", "cpu", ""):
        d = tmp_path / (k or "unified") / "c"
        (d / "sub").mkdir(parents=True)
        dirs[k] = str(d)
    assert cgroup_dirs(dirs) == dirs
    assert cgroup_dirs(dirs, ["sub"]) == {k: d + "/sub" for k, d in dirs.items()}
    assert cgroup_dirs(dirs, ["memory,cpu:/sub/"]) == {
        "memory": dirs["memory"] + "/sub", "cpu": dirs["cpu"] + "/sub", "": dirs[""]}
    # co-mounted controllers (cpu,cpuacct) share a directory: joined once
    shared = dict(dirs, cpuacct=dirs["cpu"])
    assert list(cgroup_dirs(shared)) == ["memory", "cpu", ""]
    with pytest.raises(SetupError, match="does not exist"):
        cgroup_dirs(dirs, ["nosuch"])
    with pytest.raises(SetupError, match="inside"):
        cgroup_dirs(dirs, ["sub/../../x"])
    with pytest.raises(SetupError, match="controller 'pids'"):
        cgroup_dirs(dirs, ["pids:sub"])


def test_exec_options_stop_at_the_container_id():
    cmd = COMMANDS["exec"]
    v, pos, _ = parse_flags(cmd.flags, ["-e", "A=1", "--tty", "id", "sh", "-c", "x -y", "-t"],
                            cmd.stop_at_positional)
    assert pos == ["id", "sh", "-c", "x -y", "-t"]
    assert v["env"] == ["A=1"] and v["tty"] is True
    v, pos, _ = parse_flags(cmd.flags, ["-u", "1:2", "-g", "5", "--cap", "CAP_KILL", "--cap",
                                        "CAP_CHOWN", "id", "true"], cmd.stop_at_positional)
    assert (v["user"], v["additional_gids"], v["cap"]) == ("1:2", ["5"], ["CAP_KILL",
                                                                        "CAP_CHOWN"])
    assert not COMMANDS["run"].stop_at_positional   # other commands: flags anywhere


def test_state_cgroup_dirs_match_the_managers():
    from ociruntime.linux.cgroups.v1 import V1Manager
    from ociruntime.linux.cgroups.v2 import V2Manager
    v1 = V1Manager({"memory": "/sys/fs/cgroup/memory/x", "": "/sys/fs/cgroup/unified/x"},
                   hybrid=True)
    assert state_cgroup_dirs(v1.to_state()) == v1.paths
    v2 = V2Manager("/sys/fs/cgroup/x")
    assert state_cgroup_dirs(v2.to_state()) == v2.paths == {"": "/sys/fs/cgroup/x"}
