"""Windows backend: one Job Object per container.

``prepare`` maps the config onto job limits (``job_limits``, pure) and a process (application,
command line, environment, cwd). ``create`` starts a small monitor process
(``windows_monitor``) that holds the job's only handle — the job has KILL_ON_JOB_CLOSE, so
whatever is left in it dies with the monitor — creates the process **suspended**, assigns it
to the job, reports its pid and waits; ``start`` sets a named event and the monitor resumes
the thread, so no instruction of user code runs outside the job. ``kill`` terminates the job
(Windows has no signals: every signal terminates, exit status 128+signal), ``state`` reads the
job's accounting (active processes), ``delete`` terminates what is left and removes the files.

There is no filesystem or network confinement on Windows: mounts, namespaces, seccomp… are
reported as dropped (refused without --best-effort). See docs/platforms.md.
"""
import ntpath
import os

from .base import CREATED, RUNNING, STOPPED, Plan, Platform, Status
from .common import (drop_hooks_and_names, drop_linux, drop_namespaces, drop_process_extras,
                     parse_rlimits, require_process, resource_limit)
from . import _win32 as W
from ..config.reader import Obj
from ..errors import ConfigError, StateError

NAME = "windows"
STATE_FILE = "platform.json"
READY_FILE = "monitor.ready"
EXIT_FILE = "exit.json"
PATHEXT = (".com", ".exe", ".bat", ".cmd")
MAX_AFFINITY_CPUS = 64  # one processor group: a job affinity mask is one ULONG_PTR


class JobLimits:
    """What SetInformationJobObject will be given (see ``_win32.job_structs``). Times are
    in 100 ns units, memory in bytes, ``cpu_value`` is a rate (1..10000, cycles per 10000)
    with HARD_CAP or a weight (1..9) with WEIGHT_BASED."""

    __slots__ = ("flags", "job_memory", "process_memory", "active_processes", "affinity",
                 "process_user_time", "cpu_control", "cpu_value", "ui")

    def __init__(self):
        self.flags = W.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | \
            W.JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION
        self.job_memory = self.process_memory = self.active_processes = None
        self.affinity = self.process_user_time = None
        self.cpu_control = 0
        self.cpu_value = 0
        self.ui = W.JOB_OBJECT_UILIMIT_ALL

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_dict(cls, d):
        j = cls()
        for k in cls.__slots__:
            setattr(j, k, d[k])
        return j


def _min(*vals):
    vals = [v for v in vals if v is not None]
    return min(vals) if vals else None


def parse_cpuset(s, where, ncpu):
    """"0-3,7" → bitmask; every cpu must exist (< ncpu) and fit one processor group."""
    mask = 0
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            lo, hi = int(lo), int(hi or lo)
        except ValueError:
            raise ConfigError(where, f"invalid cpu list {s!r}") from None
        if lo > hi:
            raise ConfigError(where, f"invalid cpu range {part!r}")
        if hi >= min(ncpu, MAX_AFFINITY_CPUS):
            raise ConfigError(where, f"cpu {hi} does not exist here ({ncpu} cpus, at most "
                                     f"{MAX_AFFINITY_CPUS} in one job)")
        for c in range(lo, hi + 1):
            mask |= 1 << c
    return mask


def job_limits(o: Obj, wc, ncpu: int, dropped: list) -> JobLimits:
    """config (``o``: the whole document; ``wc``: its parsed ``windows`` section) → JobLimits.
    Pure. ``linux.resources`` and ``process.rlimits`` map where a Job Object has the same
    knob; what maps only roughly is documented in docs/platforms.md."""
    j = JobLimits()
    lin = o.obj("linux")
    res = lin.obj("resources") if lin is not None else None
    lcpu = res.obj("cpu") if res is not None else None
    rl = {name: (soft, hard, path) for name, soft, hard, path in
          parse_rlimits(o.obj("process"))}

    # memory: job commit limit; per-process commit limit from RLIMIT_AS / RLIMIT_DATA
    j.job_memory = _min(wc.memory_limit, resource_limit(o, "memory", "limit"))
    j.process_memory = _min(*(rl[n][0] for n in ("RLIMIT_AS", "RLIMIT_DATA") if n in rl))
    # processes
    j.active_processes = _min(resource_limit(o, "pids", "limit"),
                              rl["RLIMIT_NPROC"][0] if "RLIMIT_NPROC" in rl else None)
    # CPU time per process (user mode), seconds → 100 ns
    if "RLIMIT_CPU" in rl:
        j.process_user_time = rl["RLIMIT_CPU"][0] * 10_000_000
    for name, (_, _, path) in rl.items():
        if name not in ("RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_NPROC", "RLIMIT_CPU"):
            dropped.append(f"{path}: {name} has no Job Object counterpart")

    # CPU rate: hard cap from windows maximum or linux quota/period; else weight from shares
    rate = wc.cpu_maximum
    if lcpu is not None:
        quota, period = lcpu.int64("quota"), lcpu.uint64("period")
        if quota is not None and quota > 0:
            period = period or 100_000
            lrate = -(-quota * 10000 // (period * ncpu))  # ceil, of all cpus
            rate = _min(rate, max(1, min(10000, lrate)))
    weight = None
    if wc.cpu_shares is not None:
        weight = max(1, min(9, round(wc.cpu_shares * 9 / 10000)))
    elif lcpu is not None and lcpu.uint64("shares") is not None:
        weight = max(1, min(9, round(lcpu.uint64("shares") * 5 / 1024)))
    if rate is not None:
        j.cpu_control = W.JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | \
            W.JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP
        j.cpu_value = rate
        if weight is not None:
            dropped.append("cpu shares: a Job Object has either a hard cap or a weight; "
                           "the cap wins")
    elif weight is not None:
        j.cpu_control = W.JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | \
            W.JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED
        j.cpu_value = weight

    # CPU affinity: windows cpu.count (first N cpus) and/or linux cpu.cpus
    masks = []
    if wc.cpu_count is not None:
        masks.append((1 << min(wc.cpu_count, ncpu, MAX_AFFINITY_CPUS)) - 1)
    if lcpu is not None and lcpu.str("cpus"):
        masks.append(parse_cpuset(lcpu.str("cpus"), lcpu.sub("cpus"), ncpu))
    if masks:
        m = masks[0]
        for x in masks[1:]:
            m &= x
        if not m:
            raise ConfigError("windows.resources.cpu.count",
                              "no cpu left once intersected with linux.resources.cpu.cpus")
        j.affinity = m

    for flag, v in ((W.JOB_OBJECT_LIMIT_JOB_MEMORY, j.job_memory),
                    (W.JOB_OBJECT_LIMIT_PROCESS_MEMORY, j.process_memory),
                    (W.JOB_OBJECT_LIMIT_ACTIVE_PROCESS, j.active_processes),
                    (W.JOB_OBJECT_LIMIT_PROCESS_TIME, j.process_user_time),
                    (W.JOB_OBJECT_LIMIT_AFFINITY, j.affinity)):
        if v is not None:
            j.flags |= flag
    if j.active_processes == 0:
        raise ConfigError("linux.resources.pids.limit", "must allow at least 1 process")
    return j


def resolve_app(rootfs, arg0, path_env, isfile):
    """The executable for args[0], as CreateProcess needs it (a full path)."""
    def with_ext(p):
        if ntpath.splitext(p)[1]:
            yield p
        else:
            for e in PATHEXT:
                yield p + e
    if ntpath.isabs(arg0) and ntpath.splitdrive(arg0)[0]:
        cands = [arg0]
    elif "\\" in arg0 or "/" in arg0:
        cands = [ntpath.normpath(ntpath.join(rootfs, arg0.lstrip("/\\")))]
    else:
        cands = [ntpath.join(d, arg0) for d in path_env.split(";") if d] + \
            [ntpath.join(rootfs, arg0)]
    for c in cands:
        for p in with_ext(c):
            if isfile(p):
                return p
    raise ConfigError("process.args[0]", f"{arg0}: not found in PATH or the rootfs")


def plan(config: dict, bundle: str, state_dir: str, *, ncpu=None, isfile=os.path.isfile,
         environ=None) -> Plan:
    """config.json → Plan(data={job limits, process}). Reads, never writes."""
    from .windows_config import parse as parse_windows
    from subprocess import list2cmdline
    ncpu = ncpu or os.cpu_count() or 1
    environ = os.environ if environ is None else environ
    o = Obj(config)
    dropped = []
    wc = parse_windows(o.obj("windows"), NAME)  # refuses Hyper-V first
    dropped += wc.dropped
    proc = require_process(o)
    root = o.obj("root", required=True)
    rootfs = ntpath.normpath(ntpath.join(bundle, root.str("path", required=True)))
    if root.bool("readonly"):
        dropped.append(f"root.readonly: no filesystem confinement on {NAME}")
    drop_namespaces(o, NAME, dropped)
    drop_linux(o, NAME, {"namespaces", "resources.memory.limit", "resources.pids.limit",
                         "resources.cpu.quota", "resources.cpu.period", "resources.cpu.shares",
                         "resources.cpu.cpus"}, dropped)
    drop_hooks_and_names(o, NAME, dropped)
    drop_process_extras(proc, NAME, dropped)
    caps = proc.obj("capabilities")
    if caps is not None and any(caps.strs(k) for k in caps.keys()):
        dropped.append(f"{caps.path}: no Linux capabilities on {NAME}")
    user = proc.obj("user")
    if user is not None:
        for k in ("uid", "gid"):
            if user.uint32(k, 0) != 0:
                dropped.append(f"{user.sub(k)}: the process runs as the calling user on {NAME}")
        if user.ints("additionalGids"):
            dropped.append(f"{user.sub('additionalGids')}: not supported on {NAME}")
        if user.str("username"):
            dropped.append(f"{user.sub('username')}: the process runs as the calling user")
        if user.uint32("umask") is not None:
            dropped.append(f"{user.sub('umask')}: no umask on {NAME}")
    for m in o.objs("mounts"):
        dropped.append(f"{m.path}: no mounts on {NAME} ({m.str('destination')}); the process "
                       "sees the host filesystem")
    limits = job_limits(o, wc, ncpu, dropped)

    env = proc.strs("env")
    names = {kv.partition("=")[0].upper() for kv in env}
    for k in ("SYSTEMROOT", "SYSTEMDRIVE"):  # many Windows programs fail without them
        if k not in names and environ.get(k):
            env.append(f"{k}={environ[k]}")
    path_env = next((kv.partition("=")[2] for kv in env
                     if kv.partition("=")[0].upper() == "PATH"), "")
    args = proc.strs("args", required=True)
    app = resolve_app(rootfs, args[0], path_env, isfile)
    cmdline = proc.str("commandLine") or list2cmdline(args)
    cwd = proc.str("cwd", required=True)
    if not (ntpath.isabs(cwd) and ntpath.splitdrive(cwd)[0]):
        cwd = ntpath.normpath(ntpath.join(rootfs, cwd.lstrip("/\\")))
    data = {"limits": limits.as_dict(), "app": app, "cmdline": cmdline, "env": env,
            "cwd": cwd}
    return Plan(NAME, data, dropped)


def object_names(state_dir):
    """Names of the container's job and start event, unique per state directory."""
    import hashlib
    h = hashlib.sha256(os.path.abspath(state_dir).encode()).hexdigest()[:24]
    return f"Local\\ocirun-{h}", f"Local\\ocirun-{h}-start"


class WindowsPlatform(Platform):
    name = NAME

    def features(self):
        return features()

    def prepare(self, config, bundle, state_dir):
        return plan(config, bundle, state_dir)

    # -- files
    def _read(self, state_dir, name):
        from .. import jsonfast
        try:
            with open(os.path.join(state_dir, name), "rb") as f:
                return jsonfast.loads(f.read())
        except FileNotFoundError:
            return None

    def _write(self, state_dir, name, doc):
        from .. import jsonfast
        p = os.path.join(state_dir, name)
        with open(p + ".tmp", "w") as f:
            f.write(jsonfast.dumps(doc))
        os.replace(p + ".tmp", p)

    def _load(self, state_dir):
        st = self._read(state_dir, STATE_FILE)
        if st is None:
            from ..errors import ContainerNotFound
            raise ContainerNotFound()
        return st

    # -- lifecycle
    def create(self, cid, plan, state_dir, stdio=None):
        import subprocess
        import sys
        import time
        from ..errors import SetupError
        os.makedirs(state_dir, exist_ok=True)
        job, event = object_names(state_dir)
        doc = dict(plan.data, id=cid, job=job, event=event, stdio=list(stdio or ()))
        self._write(state_dir, "monitor.json", doc)
        std = []
        for fd in (0, 1, 2):
            try:
                os.fstat(fd)
                std.append(fd)
            except OSError:
                std.append(subprocess.DEVNULL)
        mon = subprocess.Popen(
            [sys.executable, "-m", "ociruntime.platforms.windows_monitor", state_dir],
            stdin=std[0], stdout=std[1], stderr=std[2], close_fds=True,
            creationflags=W.CREATE_NEW_PROCESS_GROUP | W.CREATE_NO_WINDOW,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
        deadline = time.monotonic() + 30
        while True:
            ready = self._read(state_dir, READY_FILE)
            if ready is not None:
                break
            if mon.poll() is not None or time.monotonic() > deadline:
                if mon.poll() is None:
                    mon.kill()
                raise SetupError("windows monitor exited before the container was created")
            time.sleep(0.01)
        if "error" in ready:
            mon.wait(10)
            raise SetupError(ready["error"])
        self._write(state_dir, STATE_FILE, {"platform": NAME, "id": cid, "pid": ready["pid"],
                                            "monitor": mon.pid, "job": job, "event": event,
                                            "started": False})
        return ready["pid"]

    def _active(self, st):
        """Processes alive in the job, or None when the job is gone."""
        k = W.kernel32()
        h = k.OpenJobObjectW(W.JOB_OBJECT_QUERY, False, st["job"])
        if not h:
            return None
        try:
            return W.job_accounting(h).ActiveProcesses
        finally:
            k.CloseHandle(h)

    def state(self, state_dir):
        st = self._load(state_dir)
        ex = self._read(state_dir, EXIT_FILE)
        if ex is not None:
            return Status(STOPPED, st["pid"], ex["exit"])
        if not self._active(st):
            return Status(STOPPED, st["pid"])
        return Status(RUNNING if st["started"] else CREATED, st["pid"])

    def start(self, state_dir):
        st = self._load(state_dir)
        if self.state(state_dir).status != CREATED:
            raise StateError("cannot start a container that is not created")
        k = W.kernel32()
        h = W.check(k.OpenEventW(W.EVENT_MODIFY_STATE, False, st["event"]), "OpenEventW")
        try:
            st["started"] = True
            self._write(state_dir, STATE_FILE, st)
            W.check(k.SetEvent(h), "SetEvent")
        finally:
            k.CloseHandle(h)

    def kill(self, state_dir, sig, all=False):
        st = self._load(state_dir)
        if self.state(state_dir).status == STOPPED:
            raise StateError("container not running")
        if sig == 0:
            return
        k = W.kernel32()
        h = k.OpenJobObjectW(W.JOB_OBJECT_TERMINATE, False, st["job"])
        if not h:
            raise StateError("container not running")
        try:
            W.check(k.TerminateJobObject(h, 128 + sig), "TerminateJobObject")
        finally:
            k.CloseHandle(h)

    def wait(self, state_dir, timeout=None):
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ex = self._read(state_dir, EXIT_FILE)
            if ex is not None:
                return ex["exit"]
            st = self._load(state_dir)
            if self._active(st) is None:
                return None
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"container {st['id']} still running after {timeout}s")
            time.sleep(0.02)

    def delete(self, state_dir, force=False):
        st = self._load(state_dir)
        status = self.state(state_dir).status
        if status == RUNNING and not force:
            raise StateError("container still running")
        if status != STOPPED:
            self.kill(state_dir, 9)
        if self._active(st) is not None:
            self.wait(state_dir, timeout=10)
        k = W.kernel32()
        h = k.OpenProcess(W.SYNCHRONIZE, False, st["monitor"])
        if h:  # the monitor exits right after the job empties; let it close the job
            k.WaitForSingleObject(h, 10_000)
            k.CloseHandle(h)
        for f in (READY_FILE, EXIT_FILE, "monitor.json", STATE_FILE):
            try:
                os.unlink(os.path.join(state_dir, f))
            except FileNotFoundError:
                pass


def features():
    from ..spec import OCI_VERSION
    return {
        "ociVersionMin": "1.0.0", "ociVersionMax": OCI_VERSION,
        "hooks": [], "mountOptions": [],
        "annotations": {"run.oci.best-effort": "true"},
        "platform": {
            "os": NAME,
            "enforced": {
                "windows.resources.memory.limit": "job memory limit (committed memory)",
                "windows.resources.cpu.maximum": "CPU rate control, hard cap",
                "windows.resources.cpu.shares": "CPU rate control, weight 1..9",
                "windows.resources.cpu.count": "affinity to the first N cpus",
                "linux.resources.memory.limit": "job memory limit (committed memory)",
                "linux.resources.pids.limit": "active process limit",
                "linux.resources.cpu.cpus": "affinity",
                "lifetime": "KILL_ON_JOB_CLOSE: every process of the job dies with it",
                "desktop": "all UI restrictions (clipboard, desktop, display, atoms, "
                           "handles, system parameters, exit windows)",
            },
            "approximated": {
                "linux.resources.cpu.quota/period": "hard cap of quota/period over all cpus",
                "linux.resources.cpu.shares": "weight round(shares*5/1024) in 1..9",
                "process.rlimits RLIMIT_AS/RLIMIT_DATA": "per-process committed memory",
                "process.rlimits RLIMIT_NPROC": "active process limit of the job",
                "process.rlimits RLIMIT_CPU": "per-process user-mode time",
                "kill": "every signal terminates the whole job (exit status 128+signal)",
            },
            "notEnforced": ["filesystem (mounts, root.readonly, maskedPaths, readonlyPaths)",
                            "network", "namespaces", "seccomp", "capabilities",
                            "users (runs as the calling user)", "devices", "hooks",
                            "windows.layerFolders", "windows.network", "windows.devices",
                            "windows.resources.storage", "terminal"],
            "refused": ["windows.hyperv"],
        },
    }
