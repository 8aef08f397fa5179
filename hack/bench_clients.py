"""Client round trips with ocirun vs runc: the time a user waits for a whole container run.

    .venv/bin/python hack/bench_clients.py [-n 15] [--cases podman,ctr[,docker]]
                                           [--runtimes runc,ocirun] [--json FILE]

podman  `podman run --rm IMAGE true` (podman -> conmon -> runtime create/start/delete)
ctr     `ctr run --rm --runc-binary RUNTIME IMAGE ID true` (containerd runc v2 shim)
docker  `docker run --rm --network none --runtime R IMAGE true` (dockerd -> containerd -> shim)
podman-wasm  `podman run --rm WASM_IMAGE` (/hello.wat; the image's annotation selects Wasm)
ctr-wasm     `ctr run --rm --runc-binary ocirun --annotation module.wasm.image/variant=compat
             WASM_IMAGE ID` (/hello.wat)
The Wasm cases run with ocirun only (runc has no Wasm) and are compared with the same client's
native ocirun case (`true`) when that runs too; the compile cache is warm after the warm-up.

Each client is the private instance of tests/integration/clients.py (own config, state, socket,
daemons stopped by pid at the end) with the local busybox image of hack/mkimage.py. Iterations
are interleaved: every iteration runs every case with every runtime, in an order rotated each
iteration, so load from other jobs hits both alike. Two untimed warm-up runs per case and runtime
come first. Reports medians (and quartiles) and the ratio to runc. Needs root and
hack/setup.d/50-clients.sh. See docs/clients.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import clients  # noqa: E402

CASES = ["podman", "ctr", "docker", "podman-wasm", "ctr-wasm"]


def timed(cmd, env):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)
    dt = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} -> {p.returncode}: {p.stderr.decode()[-500:]}")
    return dt


class Case:
    def __init__(self, name, client, argv, runtimes=None):
        self.name, self.client, self.argv = name, client, argv
        self.runtimes = runtimes            # None: every runtime
        self.n = 0

    def cmd(self, runtime):
        self.n += 1
        return self.argv(runtime, f"{clients.PREFIX}-bench-{os.getpid()}-{runtime}-{self.n}")


def wasm_image():
    return subprocess.run([sys.executable, os.path.join(REPO, "hack", "mkimage.py"), "--wasm"],
                          check=True, capture_output=True, text=True).stdout.strip()


def make_case(name, base, image, started):
    """The case `name`; `started` maps a client kind to its running instance (shared by the
    native and the Wasm case of the same client)."""
    kind = name.split("-")[0]
    c = started.get(kind)
    if c is None:
        d = os.path.join(base, kind)
        os.makedirs(d)
        c = {"podman": clients.Podman, "ctr": clients.Containerd, "docker": clients.Docker}[kind](d)
        started[kind] = c
        c.start(image)
    if name == "podman":
        return Case(name, c, lambda rt, cid: c.argv("run", "--rm", "--name", cid, clients.IMAGE,
                                                    "true", runtime=rt))
    if name == "ctr":
        return Case(name, c, lambda rt, cid: c.ctr_cmd() + [
            "run", "--rm", "--runc-binary", clients.runtime_path(rt), clients.IMAGE, cid, "true"])
    if name == "docker":
        return Case(name, c, lambda rt, cid: c.cli() + [
            "run", "--rm", "--network", "none", c.runtime_flag(rt), "--name", cid,
            clients.IMAGE, "true"])
    c.load(wasm_image(), clients.WASM_IMAGE)
    if name == "podman-wasm":
        return Case(name, c, lambda rt, cid: c.argv("run", "--rm", "--name", cid,
                                                    clients.WASM_IMAGE, runtime=rt), ["ocirun"])
    if name == "ctr-wasm":
        return Case(name, c, lambda rt, cid: c.ctr_cmd() + [
            "run", "--rm", "--runc-binary", clients.runtime_path(rt), "--annotation",
            clients.WASM_ANNOTATION, clients.WASM_IMAGE, cid], ["ocirun"])
    raise ValueError(name)


def quartiles(xs):
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=15, help="iterations (default 15)")
    ap.add_argument("--cases", default="podman,ctr", help=f"of {','.join(CASES)}")
    ap.add_argument("--runtimes", default="runc,ocirun")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench_clients: needs root")
    names = [c for c in a.cases.split(",") if c]
    for c in names:
        if c not in CASES:
            sys.exit(f"bench_clients: unknown case {c!r} ({', '.join(CASES)})")
    rts = [r for r in a.runtimes.split(",") if r]
    image = subprocess.run([sys.executable, os.path.join(REPO, "hack", "mkimage.py")],
                           check=True, capture_output=True, text=True).stdout.strip()
    base = tempfile.mkdtemp(prefix="ocirun-clients-bench-", dir="/tmp")
    cases = []
    samples = {}
    started = {}
    try:
        for name in names:
            print(f"starting {name} ...", file=sys.stderr)
            cases.append(make_case(name, base, image, started))
        pairs = [(case, rt) for case in cases for rt in rts
                 if case.runtimes is None or rt in case.runtimes]
        samples = {(case.name, rt): [] for case, rt in pairs}
        for case, rt in pairs:                  # warm-up: caches, first-run work
            for _ in range(2):
                timed(case.cmd(rt), case.client.env)
        for i in range(a.n):
            k = i % len(pairs)
            for case, rt in pairs[k:] + pairs[:k]:
                samples[(case.name, rt)].append(timed(case.cmd(rt), case.client.env))
            print(f"\riteration {i + 1}/{a.n}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    finally:
        for kind, client in reversed(list(started.items())):  # LIFO: host dirs made by the
            left = client.stop()                                # first stay until it stops
            if left:
                print(f"bench_clients: {kind} left behind: {left}", file=sys.stderr)
        clients.umount_under(base)
        subprocess.run(["rm", "-rf", base])
    result = {}
    print(f"{'case':<12} {'runtime':<8} {'median ms':>10} {'q1-q3 ms':>14} {'ratio':>14}")
    for name in names:
        # native cases: against runc; Wasm cases: against the same client's native ocirun run
        ref_key = (name.split("-")[0], "ocirun") if name.endswith("-wasm") else (name, "runc")
        ref = statistics.median(samples[ref_key]) if samples.get(ref_key) else None
        for rt in rts:
            xs = samples.get((name, rt))
            if not xs:
                continue
            med = statistics.median(xs)
            q1, q3 = quartiles(xs)
            ratio = med / ref if ref else None
            label = "vs native" if name.endswith("-wasm") else "vs runc"
            result.setdefault(name, {})[rt] = {"median_ms": round(med, 1), "q1_ms": round(q1, 1),
                                               "q3_ms": round(q3, 1), "n": len(xs),
                                               ("ratio_to_native_ocirun" if name.endswith("-wasm")
                                                else "ratio_to_runc"): ratio and round(ratio, 3)}
            print(f"{name:<12} {rt:<8} {med:>10.1f} {q1:>6.1f}-{q3:<7.1f} "
                  f"{(f'{ratio:.2f}x {label}' if ratio else '-'):>14}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
