#!/usr/bin/env python3
"""Measure the Wasm executor's start-up costs (numbers go to docs/wasm.md).

    .venv/bin/python hack/bench-wasm.py [--size-kb 1024] [--runs 10]

1. import time of the `wasmtime` Python package vs loading its library through our binding;
2. cold compile of a generated ~1 MB command module (cache empty) and warm (cached) prepare(),
   each in a fresh interpreter through tests/linux/exec_driver.py;
3. if run as root with build/rootfs/busybox: `ocirun run` of /bin/true (native) vs the hello
   module and the ~1 MB module (Wasm, warm cache), with hyperfine when installed.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE = sysconfig.get_paths()["purelib"]
PY = sys.executable
DRIVER = os.path.join(REPO, "tests", "linux", "exec_driver.py")


def big_wat(target_bytes):
    """A command module of straight-line arithmetic functions, about target_bytes of binary."""
    body = " ".join(f"(local.set 1 (i32.add (i32.mul (local.get 1) (i32.const {k + 3})) "
                    f"(i32.xor (local.get 0) (i32.const {k * 7919 % 65521}))))" for k in range(60))
    per_func = 60 * 14 + 10   # ~bytes of binary per function
    n = max(1, target_bytes // per_func)
    funcs = [f"(func $f{i} (param i32) (result i32) (local i32) {body} (local.get 1))"
             for i in range(n)]
    calls = " ".join(f"(drop (call $f{i} (i32.const {i})))" for i in range(0, n, max(1, n // 50)))
    return ("(module\n" + "\n".join(funcs) +
            f'\n(memory (export "memory") 1)\n(func (export "_start") {calls}))\n')


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def timed(cmd, runs):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append(time.perf_counter() - t)
    return median(out)


def drive(rootfs, args, cache):
    r, w = os.pipe()
    cfg = {"path": [REPO, SITE], "rootfs": rootfs, "args": args, "cache": cache,
           "annotations": {"run.oci.handler": "wasm"}, "report_fd": w}
    t = time.perf_counter()
    p = subprocess.run([PY, "-I", "-S", DRIVER, json.dumps(cfg)], capture_output=True,
                       pass_fds=(w,))
    wall = time.perf_counter() - t
    os.close(w)
    with os.fdopen(r) as f:
        rep = json.loads(f.read() or "null")
    if p.returncode != 0:
        raise SystemExit(f"driver failed: {p.returncode} {p.stderr.decode()}")
    return wall, rep


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-kb", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    import wasmtime

    base = [PY, "-I", "-S", "-c"]
    sp = f"import sys; sys.path[:0] = [{REPO!r}, {SITE!r}]; "
    t_py = timed(base + ["pass"], a.runs)
    t_pkg = timed(base + [sp + "import wasmtime"], a.runs)
    t_capi = timed(base + [sp + "from ociruntime.linux import syscalls as s; s.wasmtime_load()"],
                   a.runs)
    print(f"python -I -S -c pass           {t_py * 1000:7.1f} ms")
    print(f"+ import wasmtime (package)    {(t_pkg - t_py) * 1000:7.1f} ms")
    print(f"+ syscalls.wasmtime_load()     {(t_capi - t_py) * 1000:7.1f} ms")

    tmp = tempfile.mkdtemp(prefix="ocirun-bench-")
    try:
        root = os.path.join(tmp, "rootfs")
        os.makedirs(root)
        wasm = wasmtime.wat2wasm(big_wat(a.size_kb * 1024))
        with open(os.path.join(root, "big.wasm"), "wb") as f:
            f.write(wasm)
        print(f"module                         {len(wasm) / 1024:7.0f} KiB")
        cache = os.path.join(tmp, "cache")
        colds, warms, warm_prep = [], [], []
        for _ in range(3):
            shutil.rmtree(cache, ignore_errors=True)
            wall, rep = drive(root, ["/big.wasm"], cache)
            assert rep["cache_hit"] is False
            colds.append((wall, rep["timings"]["compile"]))
        for _ in range(a.runs):
            wall, rep = drive(root, ["/big.wasm"], cache)
            assert rep["cache_hit"] is True
            warms.append(wall)
            warm_prep.append(rep["timings"])
        art = [n for n in os.listdir(cache) if n.endswith(".cwasm")][0]
        print(f"cached artifact                {os.path.getsize(os.path.join(cache, art)) / 1024:7.0f} KiB")
        print(f"cold: compile                  {median(c[1] for c in colds) * 1000:7.1f} ms")
        print(f"cold: driver wall              {median(c[0] for c in colds) * 1000:7.1f} ms")
        print(f"warm: driver wall              {median(warms) * 1000:7.1f} ms")
        for k in warm_prep[0]:
            print(f"warm: prepare {k:<16} {median(t[k] for t in warm_prep) * 1000:7.2f} ms")

        busybox = os.path.join(REPO, "build", "rootfs", "busybox")
        ocirun = os.path.join(REPO, ".venv", "bin", "ocirun")
        if os.geteuid() == 0 and os.path.exists(busybox):
            bench_ocirun(tmp, busybox, ocirun, os.path.join(root, "big.wasm"), cache, a.runs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SEQ_RUNS = int(os.environ.get("OCIRUN_BENCH_SEQ", "100"))


def bench_ocirun(tmp, busybox, ocirun, big, cache, runs):
    sys.path.insert(0, REPO)
    from ociruntime.spec import default_spec
    bundles = {}
    for name, args, ann in (("native", ["/bin/true"], {}),
                            ("wasm-hello", ["/hello.wat"], {"run.oci.handler": "wasm"}),
                            ("wasm-1MB", ["/big.wasm"], {"run.oci.handler": "wasm"})):
        b = os.path.join(tmp, name)
        os.makedirs(b)
        subprocess.run(["cp", "-al", busybox, os.path.join(b, "rootfs")], check=True)
        shutil.copy(os.path.join(REPO, "tests", "data", "wasm", "hello.wat"),
                    os.path.join(b, "rootfs", "hello.wat"))
        shutil.copy(big, os.path.join(b, "rootfs", "big.wasm"))
        spec = default_spec(args=args, terminal=False)
        spec["annotations"] = ann
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(spec, f)
        bundles[name] = b
    state = os.path.join(tmp, "state")
    env = dict(os.environ, OCIRUN_WASM_CACHE=cache)
    cmds = {n: [ocirun, "--root", state, "run", "--bundle", b, f"bench-{n}"]
            for n, b in bundles.items()}
    for c in cmds.values():   # warm the cache
        subprocess.run(c, env=env, check=True, capture_output=True)
    # throughput: N sequential runs of each bundle, back to back (issue 6: 100 Wasm runs)
    for n in ("native", "wasm-hello"):
        t = time.perf_counter()
        for _ in range(SEQ_RUNS):
            subprocess.run(cmds[n], env=env, check=True, capture_output=True)
        took = time.perf_counter() - t
        print(f"{SEQ_RUNS} sequential runs {n:<12} {took:6.2f} s  "
              f"({SEQ_RUNS / took:5.1f} runs/s)")
    if shutil.which("hyperfine"):
        subprocess.run(["hyperfine", "-N", "-w", "3", "-r", str(max(runs, 20)),
                        *[" ".join(c) for c in cmds.values()]], env=env, check=True)
    else:
        for n, c in cmds.items():
            ts = []
            for _ in range(runs):
                t = time.perf_counter()
                subprocess.run(c, env=env, check=True, capture_output=True)
                ts.append(time.perf_counter() - t)
            print(f"ocirun run {n:<18} {median(ts) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
