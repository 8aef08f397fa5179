"""Benchmark ocirun against runc and crun, side by side.

    .venv/bin/python hack/bench.py [--runtimes ocirun,runc,crun] [-n 20] [--cases run,create,...]
                                   [--json FILE] [--seq-count 100]

Each runtime gets its own ``--root`` and its own bundle (a copy of build/rootfs/busybox and the
config of ``ociruntime.spec.default_spec(args=[...], terminal=False)`` with a unique
``cgroupsPath`` per container). Iterations are interleaved: every iteration runs every case on
every runtime, in an order rotated each iteration, so load from other jobs hits all runtimes
alike. Each case times one command alone on a container the untimed steps prepared; the
container is removed (untimed) afterwards. A runtime's failures are counted per case and the
bench goes on. Needs root. See docs/benchmarks.md.
"""
import argparse
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from ociruntime.spec import default_spec  # noqa: E402

RUNTIMES = {
    "ocirun": os.path.join(REPO, ".venv", "bin", "ocirun"),
    "runc": "/usr/sbin/runc",
    "crun": "/usr/bin/crun",
}
CASES = ["run", "create", "start", "state", "kill", "delete", "exec", "create-rss", "run-seq"]
UNITS = {"create-rss": "KiB", "run-seq": "s"}   # all other cases: ms
GNU_TIME = "/usr/bin/time"
ROOTFS = os.path.join(REPO, "build", "rootfs", "busybox")
# crun 1.8.1 rejects ociVersion >= 1.2 ("unknown version specified"); every runtime gets the
# same config, so all get a version all of them accept. Nothing in it needs a newer one.
OCI_VERSION = "1.0.2"
CMD_TIMEOUT = 60


class Failure(Exception):
    pass


class Runtime:
    def __init__(self, name, binary, base, tag):
        self.name = name
        self.binary = binary
        self.dir = os.path.join(base, name)
        self.root = os.path.join(self.dir, "root")
        self.bundle = os.path.join(self.dir, "bundle")
        self.log = os.path.join(self.dir, "out.log")
        self.tag = tag
        self.count = 0
        self.available = True
        self.reason = None
        self.version = None

    def setup(self):
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.bundle, exist_ok=True)
        subprocess.run(["cp", "-a", ROOTFS, os.path.join(self.bundle, "rootfs")], check=True)
        try:
            out = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                                 timeout=CMD_TIMEOUT)
            self.version = (out.stdout or out.stderr).strip().splitlines()[0] if (
                out.stdout or out.stderr).strip() else None
        except OSError as e:
            self.available, self.reason = False, f"cannot execute {self.binary}: {e.strerror}"

    def new_id(self, args):
        """A fresh container id, with config.json rewritten for it (unique cgroupsPath)."""
        self.count += 1
        cid = f"{self.tag}-{self.name}-{self.count}"
        c = default_spec(args=list(args), terminal=False)
        c["ociVersion"] = OCI_VERSION
        c["linux"]["cgroupsPath"] = f"/{self.tag}/{cid}"
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(c, f)
        return cid

    def cmd(self, *args, check=True, prefix=()):
        """Run the runtime; (seconds, rusage, exit code). Output goes to a file, not a pipe: a
        created container inherits it and keeps it open."""
        argv = [*prefix, self.binary, "--root", self.root, *args]
        with open(self.log, "wb") as out:
            t0 = time.perf_counter()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 cwd=self.bundle)
            try:
                _, status, ru = _wait4(p.pid, CMD_TIMEOUT)
            except TimeoutError:
                p.kill()
                os.waitpid(p.pid, 0)
                p.returncode = -9
                raise Failure(f"{' '.join(args[:1])}: timed out after {CMD_TIMEOUT}s")
            dt = time.perf_counter() - t0
        p.returncode = code = os.waitstatus_to_exitcode(status)
        if check and code != 0:
            with open(self.log, errors="replace") as f:
                msg = " ".join(f.read().split())[:300]
            raise Failure(f"{args[0]} exited {code}: {msg}")
        return dt, ru, code

    def maxrss(self, *args):
        """Peak RSS (KiB) of the runtime process itself. Not our own wait4: a child of this
        Python process inherits its ~15 MB high-water mark through fork and exec
        (signal->maxrss), so GNU time, a small C process, forks the runtime and reports it."""
        out = os.path.join(self.dir, "maxrss")
        self.cmd(*args, prefix=(GNU_TIME, "-f", "%M", "-o", out))
        with open(out) as f:
            return int(f.read().split()[-1])

    def status(self, cid):
        argv = [self.binary, "--root", self.root, "state", cid]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=CMD_TIMEOUT)
        if p.returncode != 0:
            return None
        try:
            return json.loads(p.stdout).get("status")
        except ValueError:
            return None

    def wait_stopped(self, cid, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = self.status(cid)
            if s in ("stopped", None):
                return s
            time.sleep(0.005)
        raise Failure(f"{cid} still {s} after {timeout}s")

    def remove(self, cid):
        """Untimed clean-up of one container (whatever state it is in)."""
        if self.status(cid) is None:
            return
        self.cmd("delete", "--force", cid, check=False)
        if self.status(cid) is not None:
            self.cmd("kill", cid, "KILL", check=False)
            self.wait_stopped(cid, 5)
            self.cmd("delete", "--force", cid, check=False)

    def leftovers(self):
        p = subprocess.run([self.binary, "--root", self.root, "list", "-q"], capture_output=True,
                           text=True, timeout=CMD_TIMEOUT)
        return p.stdout.split() if p.returncode == 0 else []


def _wait4(pid, timeout):
    """os.wait4 with a deadline. poll() on a pidfd wakes up the moment the child exits: a
    sleep-and-retry loop would round every time up to its next retry (with 2 ms steps, a
    7.7 ms command measured 9.8 ms and a 4.5 ms one 5.6)."""
    fd = os.pidfd_open(pid)
    try:
        p = select.poll()
        p.register(fd, select.POLLIN)
        if not p.poll(timeout * 1000):
            raise TimeoutError
    finally:
        os.close(fd)
    return os.wait4(pid, 0)


# ---------------------------------------------------------------- cases: seconds (or KiB)

SLEEP = ("sleep", "3600")


def case_run(rt):
    cid = rt.new_id(["/bin/true"])
    try:
        dt = rt.cmd("run", "--bundle", rt.bundle, cid)[0]
        # run --rm: a foreground run that leaves the container behind pays for its delete
        if rt.status(cid) is not None:
            dt += rt.cmd("delete", cid)[0]
        return dt
    finally:
        rt.remove(cid)


def case_create(rt):
    cid = rt.new_id(SLEEP)
    try:
        return rt.cmd("create", "--bundle", rt.bundle, cid)[0]
    finally:
        rt.remove(cid)


def case_create_rss(rt):
    cid = rt.new_id(SLEEP)
    try:
        return rt.maxrss("create", "--bundle", rt.bundle, cid)
    finally:
        rt.remove(cid)


def _running(rt, args=SLEEP):
    cid = rt.new_id(args)
    rt.cmd("create", "--bundle", rt.bundle, cid)
    return cid


def case_start(rt):
    cid = _running(rt)
    try:
        return rt.cmd("start", cid)[0]
    finally:
        rt.remove(cid)


def case_state(rt):
    cid = _running(rt)
    try:
        rt.cmd("start", cid)
        return rt.cmd("state", cid)[0]
    finally:
        rt.remove(cid)


def case_kill(rt):
    cid = _running(rt)
    try:
        rt.cmd("start", cid)
        return rt.cmd("kill", cid, "KILL")[0]
    finally:
        rt.remove(cid)


def case_delete(rt):
    cid = _running(rt, ["/bin/true"])
    try:
        rt.cmd("start", cid)
        rt.wait_stopped(cid)
        return rt.cmd("delete", cid)[0]
    finally:
        rt.remove(cid)


def case_exec(rt):
    cid = _running(rt)
    try:
        rt.cmd("start", cid)
        return rt.cmd("exec", cid, "/bin/true")[0]
    finally:
        rt.remove(cid)


def case_run_seq(rt, count):
    t0 = time.perf_counter()
    for i in range(count):
        try:
            case_run(rt)
        except Failure as e:
            raise Failure(f"run {i + 1}/{count}: {e}") from None
    return time.perf_counter() - t0


FUNCS = {"run": case_run, "create": case_create, "start": case_start, "state": case_state,
         "kill": case_kill, "delete": case_delete, "exec": case_exec,
         "create-rss": case_create_rss}


# ---------------------------------------------------------------- stats and report

def summarize(samples, unit):
    if not samples:
        return {"unit": unit, "n": 0, "median": None, "p90": None, "min": None, "max": None}
    s = sorted(samples)
    k = max(0, -(-len(s) * 9 // 10) - 1)   # nearest-rank 90th percentile
    return {"unit": unit, "n": len(s), "median": statistics.median(s), "p90": s[k],
            "min": s[0], "max": s[-1]}


def hybrid_cgroups():
    """v1 controllers plus a cgroup2 hierarchy at /sys/fs/cgroup/unified."""
    return (os.path.ismount("/sys/fs/cgroup/unified")
            and not os.path.exists("/sys/fs/cgroup/cgroup.controllers"))


def probe(rt):
    """One untimed run; marks the runtime unavailable only for a known host limitation."""
    try:
        case_run(rt)
    except Failure as e:
        if "hybrid mode not supported" in str(e):
            rt.available = False
            rt.reason = f"{rt.name} does not support this hybrid cgroup host: {e}"


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "KiB":
        return f"{v / 1024:.1f}MiB"
    if unit == "s":
        return f"{v:.2f}s"
    return f"{v:.1f}ms"


def table(result):
    names = [n for n in result["runtimes"]]
    heads = ["case"] + [f"{n} med/p90" for n in names]
    ratio_keys = [k for k in ("ocirun/runc", "ocirun/crun")
                  if all(x in names for x in k.split("/"))]
    heads += ratio_keys
    rows = []
    for case, per in result["cases"].items():
        row = [case]
        for n in names:
            r = per.get(n)
            if r is None:
                row.append("-")
            elif r.get("unavailable"):
                row.append("unavailable")
            elif r["n"] == 0:
                row.append(f"FAIL x{r['failures']}")
            else:
                cell = f"{fmt(r['median'], r['unit'])}/{fmt(r['p90'], r['unit'])}"
                if r["failures"]:
                    cell += f" ({r['failures']} failed)"
                row.append(cell)
        for k in ratio_keys:
            v = result["ratios"].get(case, {}).get(k)
            row.append("-" if v is None else f"{v:.2f}x")
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(heads, *rows)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def cleanup_cgroups(tag):
    for top in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        try:
            ctrls = [os.path.join(top, c) for c in os.listdir(top)]
        except OSError:
            continue
        for c in [top] + ctrls:
            d = os.path.join(c, tag)
            if not os.path.isdir(d):
                continue
            for dirpath, _, _ in sorted(os.walk(d), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass


def bench(names, n, cases, seq_count=100, out=sys.stdout, progress=sys.stderr):
    tag = f"ocibench-{os.getpid()}"
    base = tempfile.mkdtemp(prefix="ocibench-")
    rts = []
    try:
        for name in names:
            name, _, binary = name.partition("=")
            binary = binary or RUNTIMES.get(name) or shutil.which(name) or name
            rt = Runtime(name, binary, base, tag)
            rt.setup()
            if rt.available and name == "crun" and hybrid_cgroups():
                probe(rt)
            rts.append(rt)
        samples = {c: {rt.name: [] for rt in rts} for c in cases}
        errors = {c: {rt.name: [] for rt in rts} for c in cases}
        live = [rt for rt in rts if rt.available]
        for i in range(n):
            order = live[i % len(live):] + live[:i % len(live)] if live else []
            for case in cases:
                if case == "run-seq":
                    continue
                for rt in order:
                    try:
                        v = FUNCS[case](rt)
                        samples[case][rt.name].append(v if case in UNITS else v * 1e3)
                    except Failure as e:
                        errors[case][rt.name].append(str(e))
            print(f"bench: iteration {i + 1}/{n}", file=progress, flush=True)
        if "run-seq" in cases:
            for rt in live:
                try:
                    samples["run-seq"][rt.name].append(case_run_seq(rt, seq_count))
                except Failure as e:
                    errors["run-seq"][rt.name].append(str(e))
        result = {
            "meta": {
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "host": platform.node(), "kernel": platform.release(),
                "cpus": os.cpu_count(), "iterations": n, "cgroup_parent": "/" + tag,
                "seq_count": seq_count,
                "hybrid_cgroups": bool(hybrid_cgroups()), "oci_version": OCI_VERSION,
                "units": {c: UNITS.get(c, "ms") for c in cases},
            },
            "runtimes": {rt.name: {"path": rt.binary, "version": rt.version,
                                   "available": rt.available, "reason": rt.reason}
                         for rt in rts},
            "cases": {}, "ratios": {},
        }
        for case in cases:
            per = {}
            for rt in rts:
                if not rt.available:
                    per[rt.name] = {"unavailable": True, "reason": rt.reason, "n": 0,
                                    "failures": 0, "errors": [], "samples": []}
                    continue
                s = summarize(samples[case][rt.name], UNITS.get(case, "ms"))
                errs = errors[case][rt.name]
                s.update(failures=len(errs), errors=sorted(set(errs))[:3],
                         samples=samples[case][rt.name])
                per[rt.name] = s
            result["cases"][case] = per
            ratios = {}
            for other in ("runc", "crun"):
                a, b = per.get("ocirun"), per.get(other)
                if a and b and a.get("median") and b.get("median"):
                    ratios[f"ocirun/{other}"] = a["median"] / b["median"]
            result["ratios"][case] = ratios
        print(table(result), file=out)
        for rt in rts:
            if not rt.available:
                print(f"{rt.name}: unavailable: {rt.reason}", file=out)
        return result
    finally:
        for rt in rts:
            for cid in rt.leftovers():
                rt.remove(cid)
        cleanup_cgroups(tag)
        shutil.rmtree(base, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runtimes", default="ocirun,runc,crun",
                    help="comma-separated names, each optionally NAME=PATH")
    ap.add_argument("-n", type=int, default=20, help="iterations (default 20)")
    ap.add_argument("--cases", default=",".join(CASES),
                    help=f"comma-separated, from: {','.join(CASES)}")
    ap.add_argument("--seq-count", type=int, default=100,
                    help="runs in the run-seq case (default 100)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.error("needs root")
    cases = [c for c in a.cases.split(",") if c]
    bad = [c for c in cases if c not in CASES]
    if bad:
        ap.error(f"unknown case(s): {','.join(bad)}")
    names = [r for r in a.runtimes.split(",") if r]
    if not os.path.isdir(ROOTFS):
        ap.error(f"{ROOTFS} missing: run hack/setup.sh")
    result = bench(names, a.n, cases, a.seq_count)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
