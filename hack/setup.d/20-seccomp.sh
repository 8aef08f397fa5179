#!/bin/bash
# seccomp: libseccomp (loaded by soname) and podman's default profile for the tests
# (/usr/share/containers/seccomp.json ships in Debian's golang-github-containers-common).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(libseccomp2 golang-github-containers-common)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends install "${missing[@]}" >/dev/null
fi
test -f /usr/share/containers/seccomp.json
