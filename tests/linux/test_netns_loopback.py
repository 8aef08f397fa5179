"""A new network namespace has its loopback up, as with runc (podman's `--network none`,
docker's `--network none` and ctr rely on it: nc to 127.0.0.1 in the container)."""


def test_new_netns_has_lo_up(ocirun, make_bundle):
    b = make_bundle(args=["sh", "-c", "ifconfig lo; cat /proc/net/dev"])
    assert any(n["type"] == "network" and not n.get("path") for n in b.linux["namespaces"])
    p = ocirun.ok("run", "-b", b.path, "netns-lo")
    assert "UP LOOPBACK RUNNING" in p.stdout, p.stdout
