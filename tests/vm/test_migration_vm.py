"""From the host: a counter container moved from VM A to VM B over the private link of
hack/vm/vm.py pair() (docs/migration.md): stop-and-copy, then pre-copy (pre-dump while it
runs + a final dump holding only the pages dirtied since). Both VMs run Debian's 6.1 kernel on
pure cgroup v2, which tracks dirty pages. Prints the downtime of each."""
import json
import os
import time

import pytest
from helpers import vmlib

pytestmark = [pytest.mark.vm, pytest.mark.slow]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OCI = f"{REPO}/.venv/bin/ocirun --root /run/ocirun"
CID = "criu-mig"

RECV = """
import socket, sys
l = socket.socket()
l.bind(("0.0.0.0", int(sys.argv[1])))
l.listen(1)
open("/tmp/ready", "w").close()
c, _ = l.accept()
with open("/tmp/in.tar", "wb") as f:
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        f.write(d)
c.sendall(b"k")
open("/tmp/recv.done", "w").close()
"""

SEND = """
import socket, sys
d = open("/tmp/out.tar", "rb").read()
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=120)
s.sendall(d)
s.shutdown(socket.SHUT_WR)
assert s.recv(1) == b"k"
"""


def _ok(vm, cmd, timeout=120, **kw):
    rc, out, err = vm.run(cmd, timeout=timeout, **kw)
    assert rc == 0, f"{vm.name}: {cmd}\n{out}\n{err}"
    return out


def _transfer(a, b, paths, port):
    """tar of ``paths`` (relative to /) from A, unpacked at / on B."""
    _ok(b, f'rm -f /tmp/ready /tmp/recv.done /tmp/in.tar; python3 -c "$RECV" {port} </dev/null >/tmp/recv.log 2>&1 & '
        "for i in $(seq 100); do [ -e /tmp/ready ] && exit 0; sleep 0.1; done; exit 1",
        env={"RECV": RECV})
    _ok(a, f"tar -C / -cf /tmp/out.tar {' '.join(paths)} && "
        f'python3 -c "$SEND" {b.ip} {port}', env={"SEND": SEND})
    _ok(b, "for i in $(seq 300); do [ -e /tmp/recv.done ] && break; sleep 0.1; done; "
        "tar -C / -xf /tmp/in.tar")


def _count(vm):
    out = _ok(vm, f"{OCI} exec {CID} cat /dev/shm/count")
    return int(out.strip())


def _start_counter(a):
    import sys
    sys.path.insert(0, REPO)
    from ociruntime.spec import default_spec
    spec = default_spec(args=["sh", "-c", "i=0; while true; do i=$((i+1)); "
                              "echo $i > /dev/shm/count; sleep 0.05; done"], terminal=False)
    _ok(a, f"rm -rf /tmp/bundle /tmp/img && mkdir -p /tmp/bundle /tmp/img && "
        f"cp -a {REPO}/build/rootfs/busybox /tmp/bundle/rootfs && "
        "printf '%s' \"$CFG\" > /tmp/bundle/config.json && "
        f"{OCI} run -d -b /tmp/bundle {CID} </dev/null >/dev/null 2>&1",
        env={"CFG": json.dumps(spec)})
    end = time.monotonic() + 60
    while _count(a) < 3:
        assert time.monotonic() < end, "the counter does not count on A"
        time.sleep(0.5)


def _restore(b):
    _ok(b, f"{OCI} restore -d --image-path /tmp/img/final -b /tmp/bundle {CID} "
        "</dev/null >/dev/null 2>/tmp/restore.err || { cat /tmp/restore.err; exit 1; }")


def test_migrate_between_two_vms():
    lib = vmlib()
    with lib.pair(mem=768) as (a, b):
        for vm in (a, b):
            _ok(vm, f"{REPO}/build/criu/criu check")
        results = {}
        for mode in ("stop-and-copy", "pre-copy"):
            src, dst = (a, b) if mode == "stop-and-copy" else (b, a)
            _ok(dst, "rm -rf /tmp/bundle /tmp/img")
            _start_counter(src)
            parent = ""
            if mode == "pre-copy":
                _ok(src, f"{OCI} checkpoint --pre-dump --image-path /tmp/img/pre1 {CID}")
                _transfer(src, dst, ["tmp/bundle", "tmp/img/pre1"], 7101)
                parent = "--parent-path ../pre1"
            else:
                _transfer(src, dst, ["tmp/bundle"], 7100)
            before = _count(src)
            t0 = time.monotonic()
            _ok(src, f"{OCI} checkpoint {parent} --image-path /tmp/img/final {CID}")
            _transfer(src, dst, ["tmp/img/final"], 7102 if parent else 7103)
            _restore(dst)
            downtime = time.monotonic() - t0
            results[mode] = downtime
            n = _count(dst)
            assert n >= before, (mode, before, n)
            time.sleep(1)
            assert _count(dst) > n, f"{mode}: the counter stopped on the destination"
            out = _ok(src, f"{OCI} list -q")
            assert CID not in out.split(), "the source still has the container"
            _ok(dst, f"{OCI} delete -f {CID}")
            print(f"{mode}: moved {src.name} -> {dst.name}, counter {before} -> {n}, "
                  f"downtime {downtime * 1000:.0f} ms (driver-measured, incl. agent trips)")
        assert set(results) == {"stop-and-copy", "pre-copy"}
