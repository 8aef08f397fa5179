#!/bin/bash
# CRIU for checkpoint/restore: the system's if new enough, else 4.1.1 built into build/criu.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/criu/install.sh >/dev/null
