"""ocirun: an OCI container runtime. The library API lives in ``ociruntime.api``."""
__version__ = "0.1.0"

# Where containers' state lives (state.py: ``<root>/<id>/state.json``). Here rather than in
# state.py: a checkpoint starts criu before the CLI imports anything else (criu_rpc.start_dump).
DEFAULT_ROOT = "/run/ocirun"
STATE = "state.json"
