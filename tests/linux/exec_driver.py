"""Stand-in for the container init's last steps, to test executors before the init exists:
a fresh interpreter (as every ocirun start) that builds a spec, calls select(), prepare()
with an fd of the "rootfs", chroots into it (so anything loaded late would be missing),
applies rlimits, then run().

    python -I -S exec_driver.py '{"rootfs": ..., "args": [...], ...}'

JSON keys: rootfs, args, env, cwd, annotations, memory (bytes), rlimits [[name, soft, hard]],
cache (dir or null), report_fd (prepare() facts as one JSON line), clobber_signals (reset
every signal to SIG_DFL between prepare and run, as a careless init would).
Exit 97 = error before run() (message on stderr: "driver: <Type>: <msg>").
"""
import json
import os
import sys

cfg = json.loads(sys.argv[1])
sys.path[:0] = cfg["path"]

from ociruntime.executors import select  # noqa: E402


class NS:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def main():
    rlimits = [tuple(r) for r in cfg.get("rlimits", [])]
    mem = cfg.get("memory")
    spec = NS(
        annotations=cfg.get("annotations", {}),
        process=NS(args=cfg["args"], env=cfg.get("env", ["PATH=/bin"]), cwd=cfg.get("cwd", "/"),
                   rlimits=rlimits),
        linux=NS(resources=NS(memory=NS(limit=mem)) if mem is not None else None),
    )
    try:
        ex = select(spec)
        if "cache" in cfg and hasattr(ex, "cache_dir"):
            ex.cache_dir = cfg["cache"]
        fd = os.open(cfg["rootfs"], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        ex.prepare(spec, fd)
        os.close(fd)
        if cfg.get("report_fd") is not None:
            facts = {"executor": ex.name, "cache_hit": getattr(ex, "cache_hit", None),
                     "timings": getattr(ex, "timings", None),
                     "threads": len(os.listdir("/proc/self/task")),
                     "wasmtime_imported": "wasmtime" in sys.modules,
                     "capi_loaded": getattr(sys.modules.get("ociruntime.linux.syscalls"),
                                            "_wasmtime", None) is not None}
            os.write(cfg["report_fd"], (json.dumps(facts) + "\n").encode())
            os.close(cfg["report_fd"])
        import resource
        if cfg.get("clobber_signals"):
            import _signal
            for s in (4, 7, 8, 11):  # SIGILL SIGBUS SIGFPE SIGSEGV
                _signal.signal(s, _signal.SIG_DFL)
        os.chroot(cfg["rootfs"])
        os.chdir(cfg.get("cwd", "/"))
        for name, soft, hard in rlimits:
            resource.setrlimit(getattr(resource, name), (soft, hard))
        ex.run(spec)
    except Exception as e:  # noqa: BLE001 - report and exit, like the init
        os.write(2, f"driver: {type(e).__name__}: {e}\n".encode())
        os._exit(97)
    os.write(2, b"driver: run() returned\n")
    os._exit(98)


main()
