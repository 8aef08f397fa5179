"""seccomp through the real ``ocirun run``: the filter is in force in the container, with and
without no_new_privs (without it, the init must load before dropping CAP_SYS_ADMIN)."""
import errno
import os

import pytest

from seccomp_profiles import PODMAN_PROFILE, podman_oci_seccomp


@pytest.fixture
def podman_seccomp():
    if not os.path.exists(PODMAN_PROFILE):
        pytest.fail(f"{PODMAN_PROFILE} missing: run hack/setup.d/20-seccomp.sh")
    return podman_oci_seccomp()


@pytest.mark.parametrize("nnp", [True, False])
def test_podman_profile_in_a_container(ocirun, make_bundle, podman_seccomp, nnp):
    b = make_bundle(args=["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; "
                          "ls / >/dev/null && echo ok"])
    b.process["noNewPrivileges"] = nnp
    b.linux["seccomp"] = podman_seccomp
    b.write()
    p = ocirun("run", "--bundle", b.path, f"sc-podman-{int(nnp)}")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["NoNewPrivs:", str(int(nnp)), "Seccomp:", "2", "ok"], p.stdout


def test_errno_rule_in_a_container(ocirun, make_bundle):
    b = make_bundle(args=["sh", "-c", "mkdir /tmp/x; echo rc=$?"])
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
         "errnoRet": errno.ENOMEDIUM}]}
    b.write()
    p = ocirun("run", "--bundle", b.path, "sc-errno")
    assert p.returncode == 0, p.stderr
    assert "rc=1" in p.stdout
    assert os.strerror(errno.ENOMEDIUM) in p.stderr + p.stdout


def test_bad_profile_is_refused_with_its_path(ocirun, make_bundle):
    b = make_bundle()
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}
    b.write()
    p = ocirun("run", "--bundle", b.path, "sc-bad")
    assert p.returncode == 1
    assert 'linux.seccomp.syscalls[1].action: unknown action "SCMP_ACT_BOGUS"' in p.stderr
