"""Fixtures for the real-client tests: one private instance of each client per session (started
on first use, stopped by pid at the end), the local busybox image, the runtime parameter, and a
per-test check that nothing is left behind.

The runtime is a parameter (OCIRUN_CLIENT_RUNTIMES, default "runc,ocirun"): every case also runs
with runc, so a failure with ocirun alone is ocirun's, not the harness's. A client that cannot
start fails the tests that use it, with its log."""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clients  # noqa: E402


def pytest_generate_tests(metafunc):
    if "runtime" in metafunc.fixturenames:
        metafunc.parametrize("runtime", clients.runtimes())


@pytest.fixture(scope="session")
def clients_base():
    if os.geteuid() != 0:
        pytest.fail("the client tests run as root (podman, containerd, dockerd)")
    # short: unix socket paths live here
    base = tempfile.mkdtemp(prefix="ocirun-clients-", dir="/tmp")
    yield base
    clients.umount_under(base)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def image_tar():
    out = os.path.join(clients.REPO, "build", "images", "busybox-docker.tar")
    p = subprocess.run([sys.executable, os.path.join(clients.REPO, "hack", "mkimage.py"),
                        "--format", "docker", "-o", out], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail(f"hack/mkimage.py failed:\n{p.stderr}")
    return out


def _need_binary(path, pkg):
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} missing: hack/setup.d/50-clients.sh installs {pkg}")


def _session_client(cls, name, base, image_tar, binaries):
    for path, pkg in binaries:
        _need_binary(path, pkg)
    d = os.path.join(base, name)
    os.makedirs(d, exist_ok=True)
    c = cls(d)
    try:
        c.start(image_tar)
    except clients.ClientError as e:
        c.stop()
        pytest.fail(f"{name} could not start: {e}", pytrace=False)
    return c


@pytest.fixture(scope="session")
def podman_session(clients_base, image_tar):
    c = _session_client(clients.Podman, "podman", clients_base, image_tar,
                        [(clients.PODMAN, "podman"), ("/usr/bin/conmon", "conmon")])
    yield c
    _stop(c)


@pytest.fixture(scope="session")
def containerd_session(clients_base, image_tar):
    c = _session_client(clients.Containerd, "containerd", clients_base, image_tar,
                        [(clients.CONTAINERD, "containerd"), (clients.CTR, "containerd")])
    yield c
    _stop(c)


@pytest.fixture(scope="session")
def docker_session(clients_base, image_tar):
    c = _session_client(clients.Docker, "docker", clients_base, image_tar,
                        [(clients.DOCKERD, "docker.io"), (clients.DOCKER, "docker.io")])
    yield c
    _stop(c)


def _stop(c):
    left = c.stop()
    if left:
        pytest.fail(f"{type(c).__name__} left behind (mounts, cgroups): {left}", pytrace=False)


def _clean_after(c):
    """Yield the client; afterwards remove what the test left and fail if it left anything."""
    yield c
    left = c.containers()
    if left:
        c.cleanup_containers()
    assert not left, f"test left containers behind: {left}"


@pytest.fixture
def podman(podman_session):
    yield from _clean_after(podman_session)


@pytest.fixture
def ctr(containerd_session):
    yield from _clean_after(containerd_session)


@pytest.fixture
def docker(docker_session):
    yield from _clean_after(docker_session)


@pytest.fixture
def name(request):
    """A unique container name: clients-<test>-<pid>."""
    n = request.node.name.replace("test_", "").replace("[", "-").replace("]", "")
    return f"{clients.PREFIX}-{n}-{os.getpid()}"[:60]
