"""OCI hooks: run each with the container's state JSON on stdin, honouring ``timeout``."""

from ..errors import OciError


def run_all(hooks, state_json, kind, warn_only=False):
    for i, h in enumerate(hooks):
        try:
            run(h, state_json)
        except OciError as e:
            if not warn_only:
                raise OciError(f"error running {kind} hook #{i}: {e}") from None
            import sys
            sys.stderr.write(f"warning: {kind} hook #{i}: {e}\n")


def run(h, state_json):
    import subprocess
    args = h.args or [h.path]
    try:
        p = subprocess.run(args, executable=h.path, input=state_json.encode(),
                           env=dict(e.split("=", 1) for e in h.env if "=" in e),
                           capture_output=True, timeout=h.timeout, close_fds=True)
    except subprocess.TimeoutExpired:
        raise OciError(f"{h.path}: timeout after {h.timeout}s") from None
    except OSError as e:
        raise OciError(f"{h.path}: {e.strerror}") from None
    if p.returncode != 0:
        err = (p.stderr or p.stdout).decode(errors="replace").strip().splitlines()
        raise OciError(f"{h.path}: exit status {p.returncode}"
                       + (f": {err[-1]}" if err else ""))
