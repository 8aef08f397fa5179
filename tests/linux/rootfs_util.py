"""Helpers for the rootfs tests: run a bundle with ``ocirun run`` and read what the container
saw; snapshot the host's mount table."""
import os
import subprocess
import uuid

DEV_MOUNTS = ("/dev", "/dev/pts", "/dev/shm", "/dev/mqueue")


def run(ocirun, bundle, *sh, check=True, glob=(), extra=()):
    """Write the bundle with ``sh -c SCRIPT`` as the process and run it; returns the result."""
    if sh:
        bundle.process["args"] = ["sh", "-c", " ".join(sh)]
    bundle.write()
    cid = "rfs-" + uuid.uuid4().hex[:10]
    p = ocirun("run", *extra, "-b", bundle.path, cid, glob=glob, timeout=60)
    if check:
        assert p.returncode == 0, f"rc={p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def mountinfo(text):
    """{mountpoint: (mount options, optional fields, fstype, super options)} of mountinfo text."""
    out = {}
    for line in text.splitlines():
        a, sep, b = line.partition(" - ")
        if not sep:
            continue
        fa, fb = a.split(), b.split()
        out[fa[4]] = (set(fa[5].split(",")), fa[6:], fb[0], set(fb[2].split(",")))
    return out


def host_mountpoints():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def drop_dev_mounts(bundle):
    bundle.config["mounts"] = [m for m in bundle.config["mounts"]
                               if m["destination"] not in DEV_MOUNTS]


def replace_with_symlink(path, target):
    """Replace a (hard-linked, shared) rootfs entry by a symlink without writing into it."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        subprocess.run(["rm", "-rf", path], check=True)
    os.symlink(target, path)


def tree(path):
    """Everything under path with owner and mode (to prove nothing changed)."""
    out = {}
    for d, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_uid, st.st_gid, st.st_rdev)
    st = os.lstat(path)
    out[path] = (st.st_mode, st.st_uid, st.st_gid)
    return out
