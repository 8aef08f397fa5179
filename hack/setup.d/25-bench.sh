#!/bin/bash
# hack/bench.py: GNU time measures the peak RSS of each runtime process (create-rss case).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s time >/dev/null 2>&1; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends install time >/dev/null
fi
test -x /usr/bin/time
