"""Podman's default seccomp profile (containers-common's /usr/share/containers/seccomp.json,
Docker's "includes/excludes" format) resolved into the OCI ``linux.seccomp`` object podman
would write for a container with podman's default capabilities on x86_64."""
import json
import os

PODMAN_PROFILE = "/usr/share/containers/seccomp.json"
PODMAN_CAPS = {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
               "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
               "CAP_SETUID", "CAP_SYS_CHROOT"}


def _kernel():
    return tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])


def _applies(entry, caps, goarch="amd64"):
    inc, exc = entry.get("includes") or {}, entry.get("excludes") or {}
    if inc.get("arches") and goarch not in inc["arches"]:
        return False
    if inc.get("caps") and not set(inc["caps"]) <= caps:
        return False
    if inc.get("minKernel"):
        if _kernel() < tuple(int(x) for x in inc["minKernel"].split(".")[:2]):
            return False
    if exc.get("arches") and goarch in exc["arches"]:
        return False
    if exc.get("caps") and set(exc["caps"]) & caps:
        return False
    return True


def podman_oci_seccomp(path=PODMAN_PROFILE, caps=PODMAN_CAPS):
    with open(path) as f:
        d = json.load(f)
    out = {"defaultAction": d["defaultAction"]}
    if d.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = d["defaultErrnoRet"]
    for m in d.get("archMap") or []:
        if m["architecture"] == "SCMP_ARCH_X86_64":
            out["architectures"] = [m["architecture"], *m.get("subArchitectures", [])]
    out["syscalls"] = []
    for s in d["syscalls"]:
        if not _applies(s, set(caps)):
            continue
        r = {"names": s["names"], "action": s["action"]}
        if s.get("args"):
            r["args"] = s["args"]
        if s.get("errnoRet") is not None:
            r["errnoRet"] = s["errnoRet"]
        out["syscalls"].append(r)
    return out
