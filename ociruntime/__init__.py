"""ocirun: an OCI container runtime. The library API lives in ``ociruntime.api``."""
__version__ = "0.1.0"
