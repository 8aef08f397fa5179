"""process.rlimits → setrlimit, with runc's error wording."""
from ..errors import SetupError

NUM = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
       "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
       "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
       "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15}
_INF = 0xFFFFFFFFFFFFFFFF  # RLIM_INFINITY


def _v(x):
    return _INF if x >= 0xFFFFFFFFFFFFFFFF or x < 0 else x


def apply(rlimits):
    from .syscalls import setrlimit
    for name, soft, hard in rlimits:
        n = NUM[name]
        try:
            setrlimit(n, _v(soft), _v(hard))
        except OSError as e:
            why = "operation not permitted" if e.errno == 1 else e.strerror.lower()
            raise SetupError(f"error setting rlimit type {n}: {why}") from None
