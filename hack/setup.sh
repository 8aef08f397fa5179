#!/bin/bash
# Install everything ocirun and its tests need on a fresh Debian bookworm machine (as root):
# apt packages, a virtualenv built from the real interpreter, a fast launcher, test rootfs,
# then every hack/setup.d/*.sh in order (CRIU, VM assets, clients, …). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export DEBIAN_FRONTEND=noninteractive
APT="apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends"
log() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

pkgs=(busybox-static libseccomp2 runc crun hyperfine file util-linux iproute2 procps git make
      ca-certificates python3-venv)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  $APT install "${missing[@]}" >/dev/null
fi

# The real interpreter, not the pyenv bash shim (it adds ~60 ms to every start).
PY=${OCIRUN_PYTHON:-}
if [ -z "$PY" ]; then
  PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
  [ -x "$PY" ] || PY=/usr/bin/python3
fi
if [ ! -x .venv/bin/python ] || [ "$(readlink -f .venv/bin/python)" != "$(readlink -f "$PY")" ]; then
  log "venv from $PY"
  rm -rf .venv
  "$PY" -m venv .venv
fi
stamp=.venv/.ocirun-deps
want=$(sha1sum pyproject.toml | cut -c1-40)
if [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  log "pip install -e .[test,wasm]"
  .venv/bin/pip install -q --disable-pip-version-check -e ".[test,wasm]"
  echo "$want" > $stamp
fi

# Fast launcher: -I -S skips site processing; paths are resolved once, here. Its interpreter
# is the venv's unless OCIRUN_LAUNCHER_PYTHON names another of the same X.Y (e.g. Debian's
# statically linked /usr/bin/python3.11: ~25% fewer instructions per command, see
# docs/benchmarks.md); the runtime needs nothing from site-packages on its hot path.
SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
LPY=${OCIRUN_LAUNCHER_PYTHON:-$ROOT/.venv/bin/python}
ver() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }
if [ "$(ver "$LPY")" != "$(ver .venv/bin/python)" ]; then
  echo "setup: OCIRUN_LAUNCHER_PYTHON=$LPY is not Python $(ver .venv/bin/python) (the venv's)" >&2
  exit 1
fi
cat > .venv/bin/ocirun <<L
#!$LPY -IS
import gc, sys
gc.disable()
sys.path[:0] = ["$ROOT"]
sys.path.append("$SITE")
from ociruntime.cli.main import entry
entry()
L
chmod +x .venv/bin/ocirun

# Test and example rootfs, from Debian's busybox-static.
if [ ! -x build/rootfs/busybox/bin/busybox ] || [ /bin/busybox -nt build/rootfs/busybox/bin/busybox ]; then
  log "rootfs build/rootfs/busybox"
  mkdir -p build/rootfs
  hack/mkrootfs.sh build/rootfs/busybox >/dev/null
fi
for b in bundles/*/; do
  [ -f "$b/config.json" ] || continue
  if [ ! -e "$b/rootfs/bin/busybox" ]; then rm -rf "$b/rootfs"; cp -a build/rootfs/busybox "$b/rootfs"; fi
done

for s in hack/setup.d/*.sh; do
  [ -e "$s" ] || continue
  log "$(basename "$s")"
  bash "$s"
done
log "done (ocirun: $ROOT/.venv/bin/ocirun)"
