"""Memory floor (issue 4): the smallest ``linux.resources.memory.limit`` at which
``RUNTIME run`` of /bin/true still succeeds (exit 0), by bisection over 4 KiB steps. The
runtime's own memory must not be charged to the container. Needs root.

    .venv/bin/python hack/memfloor.py [--runtime PATH] [--hi BYTES]
    python3 hack/vm/vm.py -- .venv/bin/python hack/memfloor.py     # on pure cgroup v2, in the VM
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from ociruntime.spec import default_spec  # noqa: E402
import json  # noqa: E402


def trial(runtime, bundle, root, limit, swap):
    spec = default_spec(args=["/bin/true"], terminal=False)
    spec["linux"]["resources"]["memory"] = {"limit": limit, **({"swap": limit} if swap else {})}
    spec["linux"]["cgroupsPath"] = f"/memfloor-{uuid.uuid4().hex[:8]}"
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    cid = f"memfloor-{uuid.uuid4().hex[:8]}"
    p = subprocess.run([runtime, "--root", root, "run", "-b", bundle, cid],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    subprocess.run([runtime, "--root", root, "delete", "--force", cid], capture_output=True)
    msg = (p.stderr or p.stdout).strip().splitlines()[-1:]
    return p.returncode == 0, [f"exit {p.returncode}" + (f": {msg[0]}" if msg else "")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runtime", default=os.path.join(REPO, ".venv", "bin", "ocirun"))
    ap.add_argument("--hi", type=int, default=64 << 20, help="a limit that must work")
    a = ap.parse_args()
    swap = os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") or \
        os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    work = tempfile.mkdtemp(prefix="memfloor-")
    try:
        bundle = os.path.join(work, "b")
        os.mkdir(bundle)
        shutil.copytree(os.environ.get("OCIRUN_TEST_ROOTFS",
                                       os.path.join(REPO, "build", "rootfs", "busybox")),
                        os.path.join(bundle, "rootfs"), symlinks=True)
        root = os.path.join(work, "state")
        ok, why = trial(a.runtime, bundle, root, a.hi, swap)
        if not ok:
            sys.exit(f"memfloor: fails even at {a.hi} bytes: {why[0]}")
        lo, hi = 0, a.hi // 4096                       # in pages: lo fails (or 0), hi works
        last_err = ""
        while hi - lo > 1:
            mid = (lo + hi) // 2
            ok, why = trial(a.runtime, bundle, root, mid * 4096, swap)
            if ok:
                hi = mid
            else:
                lo, last_err = mid, why[0]
        mode = "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1/hybrid"
        print(f"{os.path.basename(a.runtime)} ({mode}): smallest memory.limit for run /bin/true = "
              f"{hi * 4096} bytes ({hi * 4 } KiB); at {lo * 4} KiB: {last_err or '-'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
