#!/bin/bash
# VM assets for the cgroup v2 / stock-kernel / two-host tests (hack/vm/vm.py, docs/vm.md), built
# into build/vm (or $OCIRUN_VM_DIR) and cached:
#   vmlinux        Debian bookworm's generic kernel, uncompressed (QEMU boots it via PVH: ~2.5 s
#                  faster than the bzImage under TCG); the .deb is unpacked, never installed
#   modules/       its modules tree (+ a text modules.dep from busybox depmod), 9p-shared in
#   initramfs.cpio.gz  busybox-static + the virtio/9p/overlay modules + hack/vm/init{,2}
# Host packages: qemu-system-x86, cpio, busybox-static. OCIRUN_SKIP_VM=1 skips all of this.
set -euo pipefail
[ "${OCIRUN_SKIP_VM:-0}" = 1 ] && { echo "vm: skipped (OCIRUN_SKIP_VM=1)"; exit 0; }
cd "$(dirname "$0")/../.."
ROOT=$PWD
VM_DIR=${OCIRUN_VM_DIR:-$ROOT/build/vm}
export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }

pkgs=(qemu-system-x86 cpio busybox-static)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "vm: apt ${missing[*]}"
  apt_get update -qq
  apt_get -y -qq --no-install-recommends install "${missing[@]}" >/dev/null
fi
mkdir -p "$VM_DIR"
cd "$VM_DIR"

# 1. kernel + modules. The newest linux-image-*-amd64 the metapackage points at (the -cloud
#    flavour lacks 9p). Kept when the version is unchanged; kept too when apt cannot fetch.
KPKG=${OCIRUN_VM_KPKG:-$(apt-cache depends linux-image-amd64 2>/dev/null \
                         | awk '/Depends: linux-image-[0-9]/{print $2; exit}')}
if [ -z "$KPKG" ]; then
  apt_get update -qq || true
  KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null \
         | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
if [ -z "$KPKG" ]; then
  [ -f vmlinux ] || { echo "vm: no linux-image-amd64 in apt's lists" >&2; exit 1; }
  KPKG=linux-image-$(cat kver)
fi
KVER=${KPKG#linux-image-}
if [ ! -f vmlinux ] || [ "$(cat kver 2>/dev/null)" != "$KVER" ]; then
  echo "vm: kernel $KPKG"
  rm -rf kdeb modules.new && mkdir -p kdeb modules.new
  if ! (cd kdeb && apt-get download "$KPKG" >/dev/null 2>&1); then
    apt_get update -qq || true
    (cd kdeb && apt-get download "$KPKG" >/dev/null) || {
      if [ -f vmlinux ]; then
        echo "vm: cannot fetch $KPKG; keeping kernel $(cat kver)"; KVER=$(cat kver)
      else echo "vm: cannot fetch $KPKG" >&2; exit 1; fi; }
  fi
  if [ "$KVER" != "$(cat kver 2>/dev/null)" ]; then
    dpkg -x kdeb/*.deb modules.new
    python3 - modules.new/boot/vmlinuz-"$KVER" vmlinux.new <<'PY'
import lzma, sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"\xfd7zXZ\x00")
assert i > 0, "kernel payload is not XZ: adapt the magic in 40-vm.sh"
open(sys.argv[2], "wb").write(lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(d[i:]))
PY
    busybox depmod -b "$VM_DIR/modules.new" "$KVER"
    rm -rf modules modules.new/boot && mv modules.new modules && mv vmlinux.new vmlinux
    echo "$KVER" > kver
  fi
  rm -rf kdeb modules.new
fi
KVER=$(cat kver)
MODDIR=modules/lib/modules/$KVER

# 2. initramfs: rebuilt when the kernel, busybox or hack/vm/init{,2} change.
stamp=$( { echo "$KVER"; sha1sum /bin/busybox "$ROOT/hack/vm/init" "$ROOT/hack/vm/init2" \
           "$ROOT/hack/setup.d/40-vm.sh" | cut -c1-40; } | sha1sum | cut -c1-40)
if [ -f initramfs.cpio.gz ] && [ "$(cat initramfs.stamp 2>/dev/null)" = "$stamp" ]; then
  echo "vm: cached ($KVER, $VM_DIR)"
  exit 0
fi
want="virtio_pci 9pnet_virtio 9p overlay virtio_net virtio_console"
rm -rf initramfs && mkdir -p initramfs/{bin,proc,sys,dev,mnt,newroot,lib/modules}
cp /bin/busybox initramfs/bin/busybox
python3 - "$MODDIR/modules.dep" $want > initramfs/modules.paths <<'PY'
# dependency-ordered .ko paths (deps first) for the wanted modules
import os, sys
dep = {}
for line in open(sys.argv[1]):
    k, _, v = line.partition(":")
    dep[os.path.basename(k).split(".ko")[0].replace("-", "_")] = (k, v.split())
byname = {os.path.basename(p): n for n, (p, _) in dep.items()}
out, seen = [], set()
def visit(n):
    if n in seen:
        return
    seen.add(n)
    path, deps = dep[n]
    for d in deps:
        visit(byname[os.path.basename(d)])
    out.append(path)
for w in sys.argv[2:]:
    visit(w)
print("\n".join(out))
PY
: > initramfs/modules.list
while read -r ko; do
  cp "$MODDIR/$ko" initramfs/lib/modules/
  basename "$ko" >> initramfs/modules.list
done < initramfs/modules.paths
rm initramfs/modules.paths
cp "$ROOT/hack/vm/init" "$ROOT/hack/vm/init2" initramfs/
chmod +x initramfs/init initramfs/init2
(cd initramfs && find . | cpio -o -H newc --quiet | gzip -1 > ../initramfs.cpio.gz.new)
mv initramfs.cpio.gz.new initramfs.cpio.gz
rm -rf initramfs
echo "$stamp" > initramfs.stamp
echo "vm: built kernel $KVER, initramfs $(du -h initramfs.cpio.gz | cut -f1) in $VM_DIR"
