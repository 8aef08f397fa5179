"""Which CRIU binary ocirun drives, and its version.

Order: ``ocirun --criu PATH`` (the API: ``criu=``/``explicit``), then ``OCIRUN_CRIU``,
then the project's own build (``build/criu/criu``, from ``tools/criu/install.sh``), then
``criu`` on PATH. The one found must be at least ``MIN_VERSION``: older CRIU cannot dump on
kernels >= 6.13 (the vDSO moved; fixed in CRIU 4.1). See docs/checkpoint.md."""
from . import osfast as os

from .errors import OciError

MIN_VERSION = (4, 1)
ENV = "OCIRUN_CRIU"
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILT = os.path.join(_REPO, "build", "criu", "criu")
_versions = {}


class CriuError(OciError):
    pass


def find_criu(explicit=None):
    """Absolute path of the criu binary to use (not checked for version)."""
    want = explicit or os.getenv(ENV) or ""
    if want:
        if "/" not in want:
            p = _which(want)
            if p is None:
                raise CriuError(f"criu binary {want!r} not found in $PATH")
            return p
        if not (os.path.isfile(want) and os.access(want, os.X_OK)):
            raise CriuError(f"criu binary {want} does not exist or is not executable")
        return os.path.abspath(want)
    if os.access(BUILT, os.X_OK):
        return BUILT
    p = _which("criu")
    if p is None:
        raise CriuError("criu binary not found: install CRIU >= %d.%d (tools/criu/install.sh) "
                        "or pass --criu PATH" % MIN_VERSION)
    return p


def _which(name):
    for d in (os.getenv("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
              "/sbin:/bin").split(":"):
        p = os.path.join(d or ".", name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return os.path.abspath(p)
    for d in ("/usr/local/sbin", "/usr/sbin", "/sbin"):  # root's tools, even off PATH
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def parse_version(text):
    """``criu --version`` output -> (major, minor, sublevel)."""
    for line in text.splitlines():
        if line.startswith("Version:"):
            parts = line.split(":", 1)[1].strip().split("-")[0].split(".")
            try:
                nums = [int(x) for x in parts[:3]]
            except ValueError:
                break
            return tuple(nums + [0] * (3 - len(nums)))
    raise CriuError(f"cannot parse the criu version from {text.strip()[:80]!r}")


def criu_version(path, cache_dir=None):
    """The version of the criu at ``path``. With ``cache_dir`` (the runtime's --root), it is
    remembered in ``cache_dir/.criu-version`` keyed by the binary's inode, size and mtime:
    checkpoint/restore then skip one exec of criu (~10 ms)."""
    v = _versions.get(path)
    key = cache = None
    if v is None and cache_dir:
        try:
            st = os.stat(path)
            key = f"{path}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\0"
            cache = os.path.join(cache_dir, ".criu-version")
            with open(cache) as f:
                data = f.read()
            if data.startswith(key):
                v = _versions[path] = tuple(int(x) for x in data[len(key):].split("."))
        except (OSError, ValueError):
            pass
    if v is None:
        import subprocess
        try:
            p = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        except OSError as e:
            raise CriuError(f"cannot run {path}: {e.strerror}") from None
        v = _versions[path] = parse_version(p.stdout)
        if key is not None:
            try:
                tmp = f"{cache}.{os.getpid()}"
                with open(tmp, "w") as f:
                    f.write(key + version_str(v))
                os.rename(tmp, cache)
            except OSError:
                pass
    return v


def version_str(v):
    return ".".join(map(str, v))


def require(explicit=None, cache_dir=None):
    """(path, version) of a usable criu, or a one-line error."""
    path = find_criu(explicit)
    return path, check_version(path, cache_dir)


def check_version(path, cache_dir=None):
    """The version of the criu at ``path`` if it is recent enough, else a one-line error."""
    v = criu_version(path, cache_dir)
    if v[:2] < MIN_VERSION:
        raise CriuError(f"criu {path} is version {version_str(v)}; ocirun needs >= "
                        f"{version_str(MIN_VERSION)} (this kernel needs CRIU 4.1's vDSO fix): "
                        "run tools/criu/install.sh or pass --criu PATH")
    return v


def annotations(explicit=None):
    """For ``ocirun features``: the chosen criu's path and version, if any."""
    try:
        path = find_criu(explicit)
        return {"org.criu.version": version_str(criu_version(path)), "org.criu.path": path}
    except OciError:
        return {}


# ------------------------------------------------------------------------------ config files
CONFIG_ANNOTATION = "org.criu.config"
RUNTIME_CONFIG = "/etc/criu/ocirun.conf"


def config_file(annotations):
    """The CRIU configuration file for a container, as runc chooses it: the
    ``org.criu.config`` annotation names one (empty value: none at all), else the runtime's
    own file if it exists. Returned path is passed as ``criu --config``."""
    ann = (annotations or {})
    if CONFIG_ANNOTATION in ann:
        p = ann[CONFIG_ANNOTATION]
        if not p:
            return None
        if not os.path.isfile(p):
            raise CriuError(f"{CONFIG_ANNOTATION}: CRIU config file {p} does not exist")
        return p
    return RUNTIME_CONFIG if os.path.isfile(RUNTIME_CONFIG) else None
