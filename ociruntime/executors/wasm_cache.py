"""The Wasm executor's compile cache: compiled modules on disk, outside every container,
written and read by the container init before pivot_root. See docs/wasm.md."""
import os

DEFAULT_CACHE_DIR = "/var/cache/ocirun/wasm"
CACHE_ENV = "OCIRUN_WASM_CACHE"  # a directory, or "off"
_CACHE_MAGIC = b"OCIRUNW1"
_MAC_LEN = 32


def _blake2b():
    try:
        from _blake2 import blake2b
    except ImportError:
        from hashlib import blake2b
    return blake2b


class CompileCache:
    """Compiled modules on disk, outside every container: ``<dir>/<name>.cwasm`` holds
    MAGIC + MAC + artifact, MAC = keyed BLAKE2b(name + artifact) with the 32-byte secret in
    ``<dir>/key``. Only a file whose MAC verifies is given to Wasmtime's deserializer (which
    trusts its input). The directory must be owned by us and closed to group/others (mode
    0700); files are 0600 and written atomically (temp file + rename). Best effort: any
    problem means "no cache", never a failed start."""

    max_entries = 256        # pruned, least recently used first, after each new entry
    max_bytes = 2 << 30
    tmp_max_age = 3600       # s: temp files of crashed writers

    def __init__(self, path):
        self.path = path
        self.dfd = -1
        self.secret = None

    def open(self):
        try:
            os.makedirs(self.path, mode=0o700, exist_ok=True)
            dfd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return False
        st = os.fstat(dfd)
        if st.st_uid != os.geteuid():
            os.close(dfd)
            return False
        if st.st_mode & 0o077:
            os.fchmod(dfd, 0o700)
        self.dfd = dfd
        self.secret = self._secret()
        if self.secret is None:
            self.close()
            return False
        return True

    def close(self):
        if self.dfd >= 0:
            os.close(self.dfd)
            self.dfd = -1

    def _read_private(self, name, limit=None):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                         dir_fd=self.dfd)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if (not (st.st_mode & 0o170000 == 0o100000) or st.st_uid != os.geteuid()
                    or st.st_mode & 0o077 or (limit is not None and st.st_size > limit)):
                return None
            return read_all(fd, st.st_size)
        finally:
            os.close(fd)

    def _write_private(self, name, data, replace=True):
        tmp = f".tmp.{os.getpid()}.{os.urandom(6).hex()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=self.dfd)
        except OSError:
            return False
        try:
            with open(fd, "wb", closefd=True) as f:
                f.write(data)
            if replace:
                os.replace(tmp, name, src_dir_fd=self.dfd, dst_dir_fd=self.dfd)
            else:  # first writer wins
                os.link(tmp, name, src_dir_fd=self.dfd, dst_dir_fd=self.dfd)
                os.unlink(tmp, dir_fd=self.dfd)
            return True
        except OSError:
            try:
                os.unlink(tmp, dir_fd=self.dfd)
            except OSError:
                pass
            return False

    def _secret(self):
        for _ in range(2):
            key = self._read_private("key", limit=_MAC_LEN)
            if key is not None:
                return key if len(key) == _MAC_LEN else None
            if not self._write_private("key", os.urandom(_MAC_LEN), replace=False):
                # lost a race with another init (EEXIST): read theirs
                continue
        return self._read_private("key", limit=_MAC_LEN)

    def _mac(self, name, artifact):
        h = _blake2b()(name.encode(), digest_size=_MAC_LEN, key=self.secret)
        h.update(artifact)
        return h.digest()

    def get(self, name):
        data = self._read_private(name)
        if data is None or len(data) < len(_CACHE_MAGIC) + _MAC_LEN:
            return None
        n = len(_CACHE_MAGIC)
        if data[:n] != _CACHE_MAGIC:
            return None
        mac, artifact = data[n:n + _MAC_LEN], memoryview(data)[n + _MAC_LEN:]
        if self._mac(name, artifact) != mac:
            return None
        try:
            os.utime(name, dir_fd=self.dfd)  # recently used: pruned last
        except OSError:
            pass
        return artifact

    def put(self, name, artifact):
        ok = self._write_private(name, _CACHE_MAGIC + self._mac(name, artifact) + artifact)
        if ok:
            self.prune(keep=name)
        return ok

    def prune(self, keep=None):
        """Drop least recently used entries beyond max_entries/max_bytes, and old temp
        files. Best effort."""
        import time
        now = time.time()
        entries = []
        kept = 0
        try:
            with os.scandir(self.dfd) as it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if e.name == keep:
                        kept = st.st_size
                    elif e.name.endswith(".cwasm"):
                        entries.append((st.st_mtime_ns, st.st_size, e.name))
                    elif e.name.startswith(".tmp.") and now - st.st_mtime > self.tmp_max_age:
                        os.unlink(e.name, dir_fd=self.dfd)
        except OSError:
            return
        entries.sort()
        count = len(entries) + (keep is not None)
        total = kept + sum(sz for _, sz, _ in entries)
        for _, sz, n in entries:
            if count <= self.max_entries and total <= self.max_bytes:
                break
            try:
                os.unlink(n, dir_fd=self.dfd)
            except OSError:
                continue
            count -= 1
            total -= sz


def read_all(fd, size_hint=0):
    chunks = []
    n = 0
    while True:
        b = os.read(fd, max(size_hint - n, 0) + 65536)
        if not b:
            break
        chunks.append(b)
        n += len(b)
    return b"".join(chunks)


def default_cache_dir():
    v = os.environ.get(CACHE_ENV)
    if v is None:
        return DEFAULT_CACHE_DIR
    return None if v in ("", "off", "none") else v


def _sha256_impl():
    try:
        from _sha256 import sha256 as f  # CPython 3.11: skips hashlib's OpenSSL load (~7 ms)
    except ImportError:
        try:
            from _sha2 import sha256 as f  # 3.12+
        except ImportError:
            from hashlib import sha256 as f
    return f


sha256 = _sha256_impl()
