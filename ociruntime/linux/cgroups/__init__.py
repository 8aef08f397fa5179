"""cgroups: v1 (also hybrid: v1 controllers + a cgroup2 mount at /sys/fs/cgroup/unified) and
pure v2, chosen at run time. The runtime uses three names from here:

- ``parse_resources(o)`` -> Resources, for ``linux.resources``;
- ``manager_for(cgroups_path, container_id, systemd=False)`` -> Manager (``create``);
- ``from_state(d)`` -> Manager, from ``manager.to_state()`` kept in state.json (no scans).

See docs/cgroups.md for the Manager methods and the cgroupsPath rules."""
from ... import osfast as os

from ...errors import Unsupported
from .fs import CgroupError, Manager  # noqa: F401  (Manager.from_state(d) rebuilds any manager)

MOUNT = "/sys/fs/cgroup"
DEFAULT_PARENT = "/ocirun"

_mode = None


def mode():
    """"v2" (unified), "hybrid" (v1 + cgroup2 at /sys/fs/cgroup/unified) or "v1"."""
    global _mode
    if _mode is None:
        if os.path.exists(MOUNT + "/cgroup.controllers"):
            _mode = "v2"
        elif os.path.exists(MOUNT + "/unified/cgroup.controllers"):
            _mode = "hybrid"
        elif os.path.isdir(MOUNT):
            _mode = "v1"
        else:
            raise Unsupported(f"no cgroup filesystem is mounted at {MOUNT}")
    return _mode


def parse_resources(o):
    from .resources import parse
    return parse(o)


def default_path(container_id):
    return f"{DEFAULT_PARENT}/{container_id}"


def manager_for(cgroups_path, container_id, systemd=False):
    """The manager of a container's cgroup. ``cgroups_path``: absolute -> from the root of
    each hierarchy; relative -> under this process's own cgroup (as runc); empty/None ->
    ``/ocirun/<id>``. Nothing is touched on disk until ``create()``."""
    if systemd:
        return _systemd_manager(cgroups_path, container_id)
    path = cgroups_path or default_path(container_id)
    m = mode()
    if m == "v2":
        from .v2 import V2Manager
        return V2Manager.for_path(path)
    from .v1 import V1Manager
    return V1Manager.for_path(path, hybrid=(m == "hybrid"))


def _systemd_manager(cgroups_path, container_id):
    # Seam for a systemd driver ("slice:prefix:name" paths, transient scopes over D-Bus).
    raise Unsupported("systemd cgroup driver is not supported by ocirun: use the cgroupfs "
                      "driver (no --systemd-cgroup)")


def from_state(d):
    """Rebuild a manager from ``Manager.to_state()``."""
    if d.get("mode") == "v2":
        from .v2 import V2Manager
        return V2Manager.from_state(d)
    from .v1 import V1Manager
    return V1Manager.from_state(d)
