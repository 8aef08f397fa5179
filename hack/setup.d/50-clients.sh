#!/bin/bash
# Real clients for tests/integration and hack/bench_clients.py: podman 4.3, containerd 1.6 and
# docker 20.10 from Debian bookworm. Installed only: no daemon is enabled or started here (the
# tests start their own with private config and state dirs). Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(podman conmon catatonit uidmap containernetworking-plugins containerd docker.io)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  # the packages' postinst would start the system's containerd/docker: not wanted here
  policy=/usr/sbin/policy-rc.d; made_policy=0
  if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod +x $policy; made_policy=1; fi
  trap '[ $made_policy = 0 ] || rm -f $policy' EXIT
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends install "${missing[@]}" >/dev/null
fi
for b in /usr/bin/podman /usr/bin/conmon /usr/bin/containerd /usr/bin/ctr \
         /usr/bin/containerd-shim-runc-v2 /usr/sbin/dockerd /usr/bin/docker; do
  test -x "$b" || { echo "50-clients: $b missing" >&2; exit 1; }
done
