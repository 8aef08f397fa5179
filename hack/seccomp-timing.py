"""Time podman's default seccomp profile through ocirun's seccomp module: parse, compile
(cold), prepare from the cache, load. Run as root: .venv/bin/python hack/seccomp-timing.py"""
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests", "linux")]
from ociruntime.config.reader import Obj  # noqa: E402
from ociruntime.linux import seccomp  # noqa: E402
from ociruntime.linux import syscalls as sc  # noqa: E402
from seccomp_profiles import podman_oci_seccomp  # noqa: E402


def ms(xs):
    return f"median {statistics.median(xs) * 1e3:.3f} ms, min {min(xs) * 1e3:.3f} ms"


def main(n=30):
    d = podman_oci_seccomp()
    t = time.perf_counter()
    sc.libseccomp()
    print(f"dlopen libseccomp.so.2: {(time.perf_counter() - t) * 1e3:.3f} ms")
    parse, cold, cached, load = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            t0 = time.perf_counter()
            prof = seccomp.parse(Obj(d, "linux.seccomp"))
            t1 = time.perf_counter()
            p = prof.prepare(None)
            t2 = time.perf_counter()
            cache = os.path.join(tmp, str(i))
            prof.prepare(cache)
            t3 = time.perf_counter()
            q = prof.prepare(cache)
            t4 = time.perf_counter()
            assert q.cached and q.bpf == p.bpf
            parse.append(t1 - t0)
            cold.append(t2 - t1)
            cached.append(t4 - t3)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                sc.set_no_new_privs()
                a = time.perf_counter()
                seccomp.load(q)
                b = time.perf_counter()
                os.write(w, repr(b - a).encode())
                os._exit(0)
            os.close(w)
            load.append(float(os.read(r, 100)))
            os.close(r)
            os.waitpid(pid, 0)
    print(f"podman profile: {len(d['syscalls'])} rules, "
          f"{sum(len(x['names']) for x in d['syscalls'])} names, "
          f"{len(d.get('architectures', []))} archs, {p.instructions} BPF instructions")
    print(f"parse:            {ms(parse)}")
    print(f"compile (cold):   {ms(cold)}")
    print(f"prepare (cached): {ms(cached)}")
    print(f"load (seccomp(2)):{ms(load)}")


if __name__ == "__main__":
    main()
