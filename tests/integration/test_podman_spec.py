"""podman's own config.json (as podman 4.3 generates it: its seccomp profile, masked paths,
mounts of /etc/hosts, /etc/hostname, /run/.containerenv, cgroupsPath, ...) run by the runtime
directly, without conmon."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from clients import IMAGE, runtime_path

pytestmark = pytest.mark.clients


def test_podman_generated_config_runs(podman, runtime, name, tmp_path):
    script = ("echo host-$(hostname)-$(cat /proc/self/status | grep -c Seccomp:.2); "
              "test -e /run/.containerenv && echo containerenv; id -u; exit 3")
    # podman writes config.json when it initializes the container; the container's own
    # runtime (recorded at create) is runc, whichever runtime runs the config afterwards
    p = podman("create", "--name", name, IMAGE, "sh", "-c", script, runtime="runc")
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    try:
        p = podman("init", name)
        assert p.returncode == 0, p.stderr
        userdata = os.path.join(podman.dirs["graph"], "overlay-containers", cid, "userdata")
        with open(os.path.join(userdata, "config.json")) as f:
            config = json.load(f)
        # podman's container goes away (runc deletes it, conmon unmounts); its storage stays
        assert podman("stop", "-t", "0", name).returncode == 0
        p = podman("mount", name)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == config["root"]["path"], (p.stdout, config["root"])
        assert config["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
        bundle = tmp_path / "bundle"
        bundle.mkdir()
        with open(bundle / "config.json", "w") as f:
            json.dump(config, f)
        root = tempfile.mkdtemp(prefix="clients-spec-")
        cmd = [runtime_path(runtime), "--root", root, "run", "-b", str(bundle), name]
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=60)
            left = subprocess.run([runtime_path(runtime), "--root", root, "list", "-q"],
                                  capture_output=True, text=True).stdout.split()
        finally:
            subprocess.run([runtime_path(runtime), "--root", root, "delete", "--force", name],
                           capture_output=True)
            shutil.rmtree(root, ignore_errors=True)
        assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
        assert r.stdout.splitlines() == [f"host-{cid[:12]}-1", "containerenv", "0"], r.stdout
        assert not left, left
    finally:
        podman("umount", name)
        assert podman("rm", "-f", "-t", "0", name).returncode == 0
