#!/usr/bin/env python3
"""Build a one-layer container image from a rootfs directory, for clients that cannot reach a
registry (tests/integration, hack/bench_clients.py):

    hack/mkimage.py [--rootfs build/rootfs/busybox] [--tag localhost/ocirun-busybox:latest]
                    [--format docker|oci] -o build/images/busybox.tar

docker  a docker-archive (manifest.json + config + layer.tar): `docker load`, `podman load`
        and `ctr images import` all take it.
oci     an OCI image layout in a tar (oci-layout, index.json, blobs/sha256/...), the ref name in
        the `org.opencontainers.image.ref.name` and `io.containerd.image.name` annotations:
        `podman load` and `ctr images import` take it (docker 20.10 does not).

    hack/mkimage.py --wasm [--format oci|docker] [-o build/images/wasm-oci.tar]

--wasm  a scratch image `localhost/ocirun-wasm:latest` whose only layer holds the WAT test
        modules of tests/data/wasm at / (/hello.wat, /echo.wat, ...), Cmd ["/hello.wat"], and
        the annotation `module.wasm.image/variant=compat` on the image manifest (OCI format, the
        default with --wasm; also an image config label). podman 4.3 copies manifest annotations
        into the container's config.json (podman >= 4.6 no longer does: docs/clients.md).

The output is reproducible: entries sorted, mtimes 0, owners from the rootfs. It is rebuilt only
when missing or older than the rootfs (or with --force)."""
import argparse
import hashlib
import io
import json
import os
import sys
import tarfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TAG = "localhost/ocirun-busybox:latest"
WASM_TAG = "localhost/ocirun-wasm:latest"
WASM_DIR = os.path.join(REPO, "tests", "data", "wasm")
WASM_ANNOTATIONS = {"module.wasm.image/variant": "compat"}
ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def layer_tar(rootfs, only=None):
    """The rootfs as an uncompressed tar (bytes), deterministic; `only(relpath)` filters."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        paths = []
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for n in dirnames + sorted(filenames):
                paths.append(os.path.join(dirpath, n))
        paths = [p for p in paths if only is None or only(os.path.relpath(p, rootfs))]
        paths.sort(key=lambda p: os.path.relpath(p, rootfs))
        for p in paths:
            ti = t.gettarinfo(p, arcname=os.path.relpath(p, rootfs))
            ti.mtime = 0
            ti.uname = ti.gname = ""
            if only is not None:        # files from the source tree: root-owned, world-readable
                ti.uid = ti.gid = 0
                ti.mode = 0o755 if ti.isdir() else 0o644
            if ti.isreg():
                with open(p, "rb") as f:
                    t.addfile(ti, f)
            else:
                t.addfile(ti)
    return buf.getvalue()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def add(t, name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    t.addfile(ti, io.BytesIO(data))


def add_dir(t, name):
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    t.addfile(ti)


def build(rootfs, tag, fmt, out, wasm=False):
    layer = layer_tar(rootfs, only=(lambda rel: rel.endswith(".wat")) if wasm else None)
    layer_hex = sha(layer)
    img = {"Env": ENV, "Cmd": ["sh"], "WorkingDir": "/"}
    if wasm:
        img = {"Env": ENV, "Cmd": ["/hello.wat"], "WorkingDir": "/", "Labels": WASM_ANNOTATIONS}
    annotations = WASM_ANNOTATIONS if wasm else None
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": img,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_hex]},
        "history": [{"created": "1970-01-01T00:00:00Z",
                     "created_by": "hack/mkimage.py " + os.path.relpath(rootfs, REPO)}],
    }, sort_keys=True).encode()
    config_hex = sha(config)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as t:
        if fmt == "docker":
            add_dir(t, layer_hex)
            add(t, f"{layer_hex}/layer.tar", layer)
            add(t, f"{layer_hex}/VERSION", b"1.0")
            add(t, f"{config_hex}.json", config)
            add(t, "manifest.json", json.dumps([{
                "Config": f"{config_hex}.json", "RepoTags": [tag],
                "Layers": [f"{layer_hex}/layer.tar"]}]).encode())
            repo, _, ver = tag.rpartition(":")
            add(t, "repositories", json.dumps({repo: {ver: layer_hex}}).encode())
        else:
            manifest = {
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": "sha256:" + config_hex, "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": "sha256:" + layer_hex, "size": len(layer)}],
            }
            if annotations:
                manifest["annotations"] = annotations
            manifest = json.dumps(manifest, sort_keys=True).encode()
            index = json.dumps({"schemaVersion": 2, "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + sha(manifest), "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag,
                                "io.containerd.image.name": tag},
                "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
            add(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            add(t, "index.json", index)
            for d in ("blobs", "blobs/sha256"):
                add_dir(t, d)
            for blob in sorted((layer, config, manifest), key=sha):
                add(t, "blobs/sha256/" + sha(blob), blob)
    os.replace(tmp, out)
    return out


def newest_mtime(root):
    m = os.lstat(root).st_mtime
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            m = max(m, os.lstat(os.path.join(dirpath, n)).st_mtime)
    return m


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rootfs", default=os.path.join(REPO, "build", "rootfs", "busybox"))
    ap.add_argument("--tag", default=None)
    ap.add_argument("--format", choices=("docker", "oci"), default=None)
    ap.add_argument("--wasm", action="store_true",
                    help="scratch image of tests/data/wasm/*.wat, annotated as a Wasm image")
    ap.add_argument("-o", "--output", default=None)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args(argv)
    if a.wasm:
        a.rootfs, a.tag, a.format = WASM_DIR, a.tag or WASM_TAG, a.format or "oci"
        out = a.output or os.path.join(REPO, "build", "images", f"wasm-{a.format}.tar")
        if (not a.force and os.path.exists(out)
                and os.path.getmtime(out) >= newest_mtime(a.rootfs)
                and os.path.getmtime(out) >= os.path.getmtime(__file__)):
            print(out)
            return 0
        print(build(a.rootfs, a.tag, a.format, out, wasm=True))
        return 0
    a.tag, a.format = a.tag or DEFAULT_TAG, a.format or "docker"
    out = a.output or os.path.join(REPO, "build", "images", f"busybox-{a.format}.tar")
    if not os.path.exists(os.path.join(a.rootfs, "bin", "busybox")):
        sys.exit(f"mkimage: {a.rootfs} has no bin/busybox (run hack/setup.sh)")
    if (not a.force and os.path.exists(out)
            and os.path.getmtime(out) >= newest_mtime(a.rootfs)
            and os.path.getmtime(out) >= os.path.getmtime(__file__)):
        print(out)
        return 0
    print(build(a.rootfs, a.tag, a.format, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
