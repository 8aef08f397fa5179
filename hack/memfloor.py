#!/usr/bin/env python3
"""Memory floor: the smallest ``linux.resources.memory.limit`` at which ``ocirun run`` of
/bin/true still exits 0 (issue 4; crun reports 512 KiB, runc failed below ~20 MiB).

    sudo .venv/bin/python hack/memfloor.py [--runtime PATH] [--tries 3] [--lo KiB] [--hi KiB]

Bisects in 4 KiB steps; a limit counts as enough only if every one of ``--tries`` runs
succeeds (charges vary a little run to run). Prints one line per probe and the result.
The test rootfs is build/rootfs/busybox (hack/setup.sh)."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def bundle(dirpath, limit, args):
    from ociruntime.spec import default_spec
    os.makedirs(dirpath, exist_ok=True)
    rootfs = os.path.join(dirpath, "rootfs")
    if not os.path.exists(rootfs):
        subprocess.run(["cp", "-al", os.path.join(REPO, "build", "rootfs", "busybox"), rootfs],
                       check=True)
    cfg = default_spec(args=list(args), terminal=False)
    cfg["ociVersion"] = "1.0.2"   # crun 1.8 refuses newer ones
    cfg["linux"]["resources"] = {"memory": {"limit": limit, "swap": limit}}
    with open(os.path.join(dirpath, "config.json"), "w") as f:
        json.dump(cfg, f)


def probe(runtime, root, work, limit, tries, args, n=[0]):
    bundle(work, limit, args)
    for _ in range(tries):
        n[0] += 1
        cid = f"memfloor-{os.getpid()}-{n[0]}"
        p = subprocess.run([runtime, "--root", root, "run", "-b", work, cid],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        subprocess.run([runtime, "--root", root, "delete", "--force", cid],
                       capture_output=True)
        if p.returncode != 0:
            return False, (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
    return True, ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtime", default=os.path.join(REPO, ".venv", "bin", "ocirun"))
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--lo", type=int, default=64, help="KiB known (or assumed) to fail")
    ap.add_argument("--hi", type=int, default=32768, help="KiB known to succeed")
    ap.add_argument("args", nargs="*", default=["/bin/true"])
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="memfloor-")
    root, work = os.path.join(tmp, "state"), os.path.join(tmp, "bundle")
    try:
        ok, why = probe(a.runtime, root, work, a.hi << 10, a.tries, a.args)
        print(f"{a.hi:6d} KiB: {'ok' if ok else 'FAIL ' + why}", flush=True)
        if not ok:
            print("the upper bound already fails; raise --hi")
            return 1
        lo, hi = a.lo // 4, a.hi // 4          # in pages
        while hi - lo > 1:
            mid = (lo + hi) // 2
            ok, why = probe(a.runtime, root, work, mid * 4096, a.tries, a.args)
            print(f"{mid * 4:6d} KiB: {'ok' if ok else 'FAIL ' + why}", flush=True)
            if ok:
                hi = mid
            else:
                lo = mid
        print(f"memory floor ({os.path.basename(a.runtime)} run {' '.join(a.args)}): "
              f"{hi * 4} KiB ({hi * 4 / 1024:.2f} MiB)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
