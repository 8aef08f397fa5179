#!/bin/bash
# CRIU for ocirun checkpoint/restore.
#
# Uses the system's criu when `criu check` passes and it is new enough (>= MIN_VERSION);
# otherwise builds CRIU 4.1.1 from Debian trixie's upstream tarball (criu_4.1.1.orig.tar.xz,
# fetched from Debian's archive and checked against a pinned sha256) with bookworm's build
# dependencies into build/criu/ (cached: a second run only checks and exits). Never installs
# trixie binaries. Prints the chosen binary's path on the last line of stdout.
#
#   tools/criu/install.sh            # ensure a working criu, print its path
#   tools/criu/install.sh --check    # exit 0 if a usable criu exists (no install/build)
#   tools/criu/install.sh --force-build
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VERSION=4.1.1
MIN_VERSION=4.1          # kernels >= 6.13 moved the vDSO; CRIU < 4.1 fails ("rt vDSO area bounds")
TARBALL=criu_${VERSION}.orig.tar.xz
SHA256=f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe
URL=${CRIU_ORIG_URL:-http://deb.debian.org/debian/pool/main/c/criu/$TARBALL}
PREFIX=$ROOT/build/criu
BUILD_DEPS=(gcc make libc6-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev
            protobuf-compiler libnl-3-dev libnet1-dev libcap-dev libbsd-dev pkgconf uuid-dev
            libgnutls28-dev libnftables-dev python3-protobuf curl xz-utils)
log() { printf 'criu: %s\n' "$*" >&2; }

version_of() {  # "Version: 4.1.1" -> 4.1.1
  "$1" --version 2>/dev/null | sed -n 's/^Version: *//p' | head -1
}
new_enough() {  # version >= MIN_VERSION
  [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$MIN_VERSION" "$1" | sort -V | head -1)" = "$MIN_VERSION" ]
}
usable() {
  local bin=$1 v
  [ -x "$bin" ] || return 1
  v=$(version_of "$bin")
  new_enough "$v" || { log "$bin: version '${v:-?}' < $MIN_VERSION"; return 1; }
  "$bin" check >/dev/null 2>&1 || { log "$bin $v: 'criu check' fails"; return 1; }
}

force=0; check_only=0
case "${1:-}" in
  --force-build) force=1 ;;
  --check) check_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--check|--force-build]" >&2; exit 2 ;;
esac

if [ $force = 0 ]; then
  # 1. our own build, cached
  if [ -x "$PREFIX/criu" ] && [ "$(cat "$PREFIX/.version" 2>/dev/null)" = "$VERSION" ] && usable "$PREFIX/criu"; then
    echo "$PREFIX/criu"; exit 0
  fi
  # 2. the system's
  sys=$(command -v criu || true)
  if [ -n "$sys" ] && usable "$sys"; then echo "$sys"; exit 0; fi
  [ $check_only = 1 ] && exit 1
fi

# 3. build from source
missing=()
for p in "${BUILD_DEPS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends install "${missing[@]}" >/dev/null
fi
SRC=$ROOT/build/criu-src
mkdir -p "$SRC"
if [ ! -f "$SRC/$TARBALL" ] || ! echo "$SHA256  $SRC/$TARBALL" | sha256sum -c --quiet - 2>/dev/null; then
  log "fetch $URL"
  curl -sSfL --retry 3 -o "$SRC/$TARBALL.part" "$URL"
  echo "$SHA256  $SRC/$TARBALL.part" | sha256sum -c --quiet - || { log "sha256 mismatch for $TARBALL"; exit 1; }
  mv "$SRC/$TARBALL.part" "$SRC/$TARBALL"
fi
rm -rf "$SRC/criu-$VERSION"
tar -C "$SRC" -xf "$SRC/$TARBALL"
log "build $VERSION (make criu)"
make -C "$SRC/criu-$VERSION" -j"$(nproc)" criu >"$SRC/build.log" 2>&1 || { tail -20 "$SRC/build.log" >&2; log "build failed: $SRC/build.log"; exit 1; }
mkdir -p "$PREFIX"
install -m 0755 "$SRC/criu-$VERSION/criu/criu" "$PREFIX/criu.new"
mv "$PREFIX/criu.new" "$PREFIX/criu"
echo "$VERSION" > "$PREFIX/.version"
rm -rf "$SRC/criu-$VERSION"
v=$(version_of "$PREFIX/criu")
if "$PREFIX/criu" check >/dev/null 2>&1; then log "built $v: criu check: Looks good"
else log "built $v: 'criu check' reports problems on this kernel (see '$PREFIX/criu check')"; fi
echo "$PREFIX/criu"
