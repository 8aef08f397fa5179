#!/bin/bash
# Build a minimal test rootfs from Debian's busybox-static: mkrootfs.sh DIR
# (no downloaded images: the one binary comes from the busybox-static package)
set -euo pipefail
dir=${1:?usage: mkrootfs.sh DIR}
bb=/bin/busybox
[ -x "$bb" ] || { echo "mkrootfs: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q 'statically linked' || ldd "$bb" 2>&1 | grep -q 'not a dynamic' \
  || { echo "mkrootfs: $bb is not static" >&2; exit 1; }
tmp=$(mktemp -d "${dir%/}.tmp.XXXXXX")
chmod 755 "$tmp"   # mktemp makes 0700: non-root container users must traverse /
mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,home,var,run,mnt}
cp "$bb" "$tmp/bin/busybox"
for app in $("$bb" --list-full); do
  [ "$app" = bin/busybox ] && continue
  mkdir -p "$tmp/$(dirname "$app")"
  ln -sf /bin/busybox "$tmp/$app"
done
chmod 1777 "$tmp/tmp"
cat > "$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
tester:x:1000:1000:tester:/home/tester:/bin/sh
P
cat > "$tmp/etc/group" <<'G'
root:x:0:
daemon:x:1:
bin:x:2:
tty:x:5:
wheel:x:10:tester
users:x:100:tester
nogroup:x:65534:
tester:x:1000:
G
echo "ocirun-test" > "$tmp/etc/hostname"
: > "$tmp/etc/resolv.conf"; : > "$tmp/etc/hosts"
mkdir -p "$tmp/home/tester"; chown 1000:1000 "$tmp/home/tester"
rm -rf "$dir"; mv "$tmp" "$dir"
echo "rootfs: $dir ($(du -sh "$dir" | cut -f1))"
