"""CRIU checkpoint/restore on a pure cgroup v2 host with a stock kernel (runs inside the test VM,
tests/vm/conftest.py): restore under a new name lands in its own cgroup with the config's
limits; pre-dump + a final dump with --parent-path works (this kernel tracks dirty pages)."""
import os
import subprocess
import time

import pytest

pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(not os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                       reason="needs a pure cgroup v2 host: runs inside the VM (docs/vm.md)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

COUNTER = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/count; "
           "sleep 0.05; done"]


def _count(pid):
    try:
        with open(f"/proc/{pid}/root/dev/shm/count") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _wait_count(pid, above, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if _count(pid) > above:
            return _count(pid)
        time.sleep(0.1)
    raise AssertionError(f"counter of {pid} did not pass {above}")


def _run(ocirun, *args):
    """stdio: /dev/null and a named log file (a detached container keeps what it inherits:
    never a pipe we wait on)."""
    err = f"/tmp/vmck-{os.getpid()}.err"
    with open(err, "a") as ef:
        p = subprocess.run([ocirun.binary, "--root", ocirun.root, *map(str, args)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ef,
                           timeout=300)
    with open(err) as f:
        text = f.read()
    os.unlink(err)
    assert p.returncode == 0, text


def test_restore_new_name_v2_limits(ocirun, make_bundle, tmp_path):
    b = make_bundle(COUNTER)
    b.linux["resources"].update({"memory": {"limit": 96 << 20}, "pids": {"limit": 40}})
    b.write()
    _run(ocirun, "run", "-d", "-b", b.path, "vmck-a")
    pid = ocirun.state("vmck-a")["pid"]
    _wait_count(pid, 2)
    _run(ocirun, "checkpoint", "--leave-running", "--image-path", tmp_path / "img", "vmck-a")
    _run(ocirun, "restore", "-d", "--image-path", tmp_path / "img", "-b", b.path, "vmck-b")
    pid2 = ocirun.state("vmck-b")["pid"]
    with open(f"/proc/{pid2}/cgroup") as f:
        assert f.read().strip() == "0::/ocirun/vmck-b"
    with open("/sys/fs/cgroup/ocirun/vmck-b/memory.max") as f:
        assert int(f.read()) == 96 << 20
    with open("/sys/fs/cgroup/ocirun/vmck-b/pids.max") as f:
        assert f.read().strip() == "40"
    _wait_count(pid2, _count(pid2) + 2)
    _wait_count(pid, _count(pid) + 2)
    for cid in ("vmck-a", "vmck-b"):
        ocirun.ok("delete", "--force", cid)
    assert not os.path.exists("/sys/fs/cgroup/ocirun/vmck-b")


def test_pre_dump_then_dump(ocirun, make_bundle, tmp_path):
    b = make_bundle(COUNTER)
    _run(ocirun, "run", "-d", "-b", b.path, "vmck-p")
    _wait_count(ocirun.state("vmck-p")["pid"], 2)
    _run(ocirun, "checkpoint", "--pre-dump", "--image-path", tmp_path / "pre1", "vmck-p")
    assert ocirun.state("vmck-p")["status"] == "running"
    _run(ocirun, "checkpoint", "--parent-path", "../pre1", "--image-path", tmp_path / "final",
         "vmck-p")
    assert "vmck-p" not in ocirun.ids()
    _run(ocirun, "restore", "-d", "--image-path", tmp_path / "final", "-b", b.path, "vmck-p")
    pid = ocirun.state("vmck-p")["pid"]
    _wait_count(pid, _count(pid) + 2)
    ocirun.ok("delete", "--force", "vmck-p")


def test_lazy_pages(ocirun, make_bundle, tmp_path):
    """Lazy migration on this kernel: ``checkpoint --lazy-pages --page-server --status-fd``
    writes the images without the memory and signals the status fd; ``criu lazy-pages``
    fetches the pages from the dumping criu's page server while ``restore --lazy-pages``
    runs the restored container, which keeps counting."""
    import select
    from ociruntime.criu import find_criu
    b = make_bundle(COUNTER)
    _run(ocirun, "run", "-d", "-b", b.path, "vmck-l")
    pid = ocirun.state("vmck-l")["pid"]
    _wait_count(pid, 2)
    img = tmp_path / "lazy"
    img.mkdir()
    r, w = os.pipe()
    err = tmp_path / "dump.err"
    with open(err, "w") as ef:
        dump = subprocess.Popen([ocirun.binary, "--root", ocirun.root, "checkpoint",
                                 "--lazy-pages", "--page-server", "127.0.0.1:27123",
                                 "--status-fd", str(w), "--image-path", img, "vmck-l"],
                                pass_fds=(w,), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=ef)
    os.close(w)
    lazy = None
    try:
        ready, _, _ = select.select([r], [], [], 120)
        assert ready and os.read(r, 1) == b"\0", err.read_text()
        assert (img / "inventory.img").exists()
        lazy = subprocess.Popen([find_criu(), "lazy-pages", "--page-server", "--address",
                                 "127.0.0.1", "--port", "27123", "--images-dir", str(img),
                                 "-v4", "-o", "lazy-pages.log"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # under another name: the dumped container is deleted only once its pages are gone
        # (on another host, in a real migration)
        _run(ocirun, "restore", "-d", "--lazy-pages", "--image-path", img, "-b", b.path,
             "vmck-l2")
        assert dump.wait(timeout=120) == 0, err.read_text()
        assert lazy.wait(timeout=120) == 0
        assert "vmck-l" not in ocirun.ids()
        pid2 = ocirun.state("vmck-l2")["pid"]
        _wait_count(pid2, _count(pid2) + 2)
    finally:
        os.close(r)
        for p in (dump, lazy):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        for cid in ("vmck-l", "vmck-l2"):
            ocirun("delete", "--force", cid)
