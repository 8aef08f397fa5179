"""Pure logic of exec: --user parsing, --cgroup selection, options ending at the id."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from ociruntime.cli.commands import COMMANDS  # noqa: E402
from ociruntime.cli.parser import parse_flags  # noqa: E402
from ociruntime.errors import OciError, SetupError  # noqa: E402
from ociruntime.linux.exec import cgroup_procs_files  # noqa: E402
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
    assert cgroup_procs_files(dirs) == [dirs[k] + "/cgroup.procs" for k in dirs]
    assert cgroup_procs_files(dirs, ["sub"]) == [dirs[k] + "/sub/cgroup.procs" for k in dirs]
    got = cgroup_procs_files(dirs, ["memory,cpu:/sub/"])
    assert got == [dirs["memory"] + "/sub/cgroup.procs", dirs["cpu"] + "/sub/cgroup.procs",
                   dirs[""] + "/cgroup.procs"]
    with pytest.raises(SetupError, match="does not exist"):
        cgroup_procs_files(dirs, ["nosuch"])
    with pytest.raises(SetupError, match="inside"):
        cgroup_procs_files(dirs, ["sub/../../x"])
    with pytest.raises(SetupError, match="controller 'pids'"):
        cgroup_procs_files(dirs, ["pids:sub"])


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
