"""Checkpoint + restore time, ocirun vs runc, both driving the same CRIU binary.

    .venv/bin/python hack/bench-checkpoint.py [-n 3] [--sizes 64,512] [--json FILE]

A container holds N MiB of dirty anonymous memory (a tiny static C program, built here with
gcc into build/bench/dirty: malloc + memset, then sleep). Each iteration, for each runtime
(order alternating): ``run -d`` (untimed), ``checkpoint`` (timed), ``restore -d`` (timed),
``delete -f`` (untimed). Both runtimes get the same config, stdio pipes (as a shim gives),
their own --root and image directory, and ``--criu`` pointing at the same binary.

CRIU's own time is the last timestamp of its log (dump.log / restore.log: seconds since criu
started); the runtime's overhead is wall time minus that. Needs root. See docs/checkpoint.md.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from ociruntime import criu as criu_mod  # noqa: E402
from ociruntime.spec import default_spec  # noqa: E402

RUNTIMES = {"ocirun": os.path.join(REPO, ".venv", "bin", "ocirun"), "runc": "/usr/sbin/runc"}
DIRTY_C = r"""
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    size_t n = (size_t)atol(argv[1]) << 20;
    char *p = malloc(n);
    for (size_t i = 0; i < n; i += 4096) p[i] = (char)(i >> 12) | 1;
    write(1, "ready\n", 6);
    for (;;) pause();
}
"""


def build_dirty():
    out = os.path.join(REPO, "build", "bench", "dirty")
    if os.path.exists(out):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    src = out + ".c"
    with open(src, "w") as f:
        f.write(DIRTY_C)
    subprocess.run(["gcc", "-O2", "-static", "-o", out, src], check=True)
    return out


def criu_elapsed(log):
    """Seconds from criu's start to its last log line."""
    last = None
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("(") and ")" in line[:14]:
                try:
                    last = float(line[1:line.index(")")])
                except ValueError:
                    pass
    return last


def sh(cmd, **kw):
    p = subprocess.run(cmd, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd} -> {p.returncode}")
    return p


def one(name, binary, criu, base, bundle, i, size):
    root = os.path.join(base, name, "root")
    img = os.path.join(base, name, f"img-{size}-{i}")
    cid = f"criubench-{name}-{size}-{i}"
    g = [binary, "--root", root, "--criu", criu]
    r, w = os.pipe()
    sh(g + ["run", "-d", "-b", bundle, cid], stdin=subprocess.DEVNULL, stdout=w,
       stderr=subprocess.DEVNULL)
    os.close(w)
    assert os.read(r, 6) == b"ready\n"
    t0 = time.perf_counter()
    sh(g + ["checkpoint", "--image-path", img, cid], stdin=subprocess.DEVNULL)
    t1 = time.perf_counter()
    os.close(r)
    r, w = os.pipe()
    t2 = time.perf_counter()
    sh(g + ["restore", "-d", "--image-path", img, "-b", bundle, cid], stdin=subprocess.DEVNULL,
       stdout=w, stderr=subprocess.DEVNULL)
    t3 = time.perf_counter()
    os.close(w)
    os.close(r)
    sh(g + ["delete", "-f", cid])
    res = {"dump": t1 - t0, "restore": t3 - t2,
           "criu_dump": criu_elapsed(os.path.join(img, "dump.log")),
           "criu_restore": criu_elapsed(os.path.join(img, "restore.log"))}
    shutil.rmtree(img, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--sizes", default="64,512")
    ap.add_argument("--runtimes", default="ocirun,runc")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    criu, ver = criu_mod.require()
    dirty = build_dirty()
    base = tempfile.mkdtemp(prefix="bench-criu-")
    names = [n for n in a.runtimes.split(",") if os.access(RUNTIMES[n], os.X_OK)]
    results = {}
    try:
        for n in names:
            b = os.path.join(base, n, "bundle")
            os.makedirs(b)
            shutil.copytree(os.path.join(REPO, "build", "rootfs", "busybox"),
                            os.path.join(b, "rootfs"), symlinks=True)
            shutil.copy(dirty, os.path.join(b, "rootfs", "dirty"))
        for size in map(int, a.sizes.split(",")):
            for n in names:
                spec = default_spec(args=["/dirty", str(size)], terminal=False)
                spec["ociVersion"] = "1.0.2"
                with open(os.path.join(base, n, "bundle", "config.json"), "w") as f:
                    json.dump(spec, f)
            for i in range(a.n):
                order = names if i % 2 == 0 else names[::-1]
                for n in order:
                    r = one(n, RUNTIMES[n], criu, base, os.path.join(base, n, "bundle"), i, size)
                    results.setdefault(f"{n}/{size}", []).append(r)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"criu {criu} {criu_mod.version_str(ver)}; medians of {a.n}, ms")
    print(f"{'runtime/MiB':<14}{'checkpoint':>11}{'criu dump':>10}{'overhead':>9}"
          f"{'restore':>9}{'criu rst':>9}{'overhead':>9}")
    summary = {}
    for k, rs in results.items():
        m = {f: statistics.median(r[f] for r in rs) * 1000 for f in rs[0]}
        m["dump_overhead"] = statistics.median((r["dump"] - r["criu_dump"]) * 1000 for r in rs)
        m["restore_overhead"] = statistics.median((r["restore"] - r["criu_restore"]) * 1000
                                                  for r in rs)
        summary[k] = m
        print(f"{k:<14}{m['dump']:>11.0f}{m['criu_dump']:>10.0f}{m['dump_overhead']:>9.0f}"
              f"{m['restore']:>9.0f}{m['criu_restore']:>9.0f}{m['restore_overhead']:>9.0f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"criu": criu_mod.version_str(ver), "raw": results, "median": summary}, f,
                      indent=1)


if __name__ == "__main__":
    main()
