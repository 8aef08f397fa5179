"""When the init joins its cgroup (docs/cgroups.md "When the init joins its cgroup"): late,
after the rootfs, so the runtime's pages are not charged to the container — yet in the cgroup
before the user's program runs, with the cgroup namespace rooted at the container's cgroup;
early when a hook may look at it or /sys/fs/cgroup is a bind of the init's own cgroup."""
import os
import subprocess
import uuid

import pytest

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/memory"),
                       reason="no cgroup v1 memory hierarchy (v2: tests/vm/)"),
]


def cid():
    return f"resources-{uuid.uuid4().hex[:10]}"


def test_runs_under_a_1mib_memory_limit(ocirun, make_bundle):
    # the init used to join first and be charged ~1.6 MiB of copied runtime pages
    b = make_bundle(args=["/bin/true"])
    b.linux["resources"] = {"memory": {"limit": 1 << 20, "swap": 1 << 20}}
    b.write()
    p = ocirun("run", "-b", b.path, cid(), stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr


def test_in_the_cgroup_and_its_namespace_before_the_program_runs(ocirun, make_bundle):
    b = make_bundle(args=["sh", "-c", "cat /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max"])
    b.linux["resources"] = {"pids": {"limit": 42}}
    b.write()
    name = cid()
    p = ocirun("run", "-b", b.path, name, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    cg = [x.split(":", 2) for x in lines[:-1]]
    assert cg and all(path == "/" for _, _, path in cg), p.stdout   # namespace root = ours
    assert lines[-1] == "42"                                        # our cgroup is mounted


def test_host_view_of_a_running_init(ocirun, make_bundle):
    b = make_bundle(args=["sleep", "1000"])
    name = cid()
    ocirun.ok("run", "-d", "-b", b.path, name, stdin=subprocess.DEVNULL)
    try:
        pid = ocirun.state(name)["pid"]
        with open(f"/proc/{pid}/cgroup") as f:
            paths = [line.rstrip("\n").split(":", 2)[2] for line in f]
        assert paths and all(p == f"/ocirun/{name}" for p in paths), paths
    finally:
        ocirun("delete", "--force", name)


def test_prestart_hook_sees_the_init_in_its_cgroup(ocirun, make_bundle, tmp_path):
    out = tmp_path / "hook.out"
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\npid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/')\n"
                    f"grep memory: /proc/$pid/cgroup > {out}\n")
    hook.chmod(0o755)
    b = make_bundle(args=["true"])
    b.config["hooks"] = {"prestart": [{"path": str(hook)}]}
    b.write()
    name = cid()
    p = ocirun("run", "-b", b.path, name, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert out.read_text().strip().endswith(f":memory:/ocirun/{name}")


def test_no_cgroup_namespace_binds_the_container_cgroup(ocirun, make_bundle):
    # without a cgroup namespace /sys/fs/cgroup is a bind of the init's own cgroup: it must
    # already be the container's when the rootfs is set up
    b = make_bundle(args=["cat", "/sys/fs/cgroup/pids/pids.max"])
    b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] != "cgroup"]
    b.linux["resources"] = {"pids": {"limit": 17}}
    b.write()
    p = ocirun("run", "-b", b.path, cid(), stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "17"


def test_created_init_holds_no_cgroup_fd_and_is_in_every_hierarchy(ocirun, make_bundle):
    """v1/hybrid: the bridge and the init move themselves through "0" written to `tasks`
    fds the runtime opened for them (and the bridge is born in the unified cgroup2 dir): at
    `created` the init is in all of its cgroups, with and without a cgroup namespace, and
    holds none of those fds."""
    for with_cgns in (True, False):
        b = make_bundle(args=["sleep", "1000"])
        if not with_cgns:
            b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] != "cgroup"]
            b.config["mounts"] = [m for m in b.config["mounts"] if m["type"] != "cgroup"]
        b.write()
        name = cid()
        ocirun.ok("create", "-b", b.path, name, stdin=subprocess.DEVNULL)
        try:
            pid = ocirun.state(name)["pid"]
            with open(f"/proc/{pid}/cgroup") as f:
                paths = [line.rstrip("\n").split(":", 2)[2] for line in f]
            assert len(paths) > 1 and all(p == f"/ocirun/{name}" for p in paths), paths
            fds = [os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")]
            assert not [t for t in fds if "/sys/fs/cgroup" in t], fds
        finally:
            ocirun("delete", "--force", name)
