#!/bin/bash
# CRIU for checkpoint/restore: the system's if new enough, else 4.1.1 built into build/criu
# (tools/criu/install.sh installs its own build deps). rsync for hack/migrate.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s rsync >/dev/null 2>&1; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends install rsync >/dev/null
fi
tools/criu/install.sh >/dev/null
