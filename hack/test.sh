#!/bin/bash
# The test command (README, .ci/run): set up if needed, then run the whole suite as root.
# pytest's exit status 5 ("no tests collected") is a failure here, never a silent pass.
set -uo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh || { echo "test: setup failed" >&2; exit 1; }
.venv/bin/python -m pytest -ra -p no:cacheprovider "${@:-tests}"
rc=$?
if [ $rc -eq 5 ]; then echo "test: pytest collected no tests: failing" >&2; exit 1; fi
exit $rc
