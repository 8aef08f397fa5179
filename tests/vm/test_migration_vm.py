"""From the host: a running container moved between two QEMU VMs over their private link
(issue 5, docs/migration.md). In VM A, ocirun runs a counter that holds MEM_MIB of anonymous
memory (a small hot part of it rewritten every tick, the rest checked a page per tick);
``hack/migrate`` checkpoints it, copies the bundle and the images to VM B with rsync through
hack/vm/rsh.py (the VMs have no sshd) and restores it there; it must keep counting from where
it was, with its memory intact. Once stop-and-copy, once pre-copy (2 ``--pre-dump`` passes +
the final pages through ``criu page-server`` on B); both downtimes are printed.

Bundles and images live in each VM's private /tmp (tmpfs): only the repository (ocirun, criu,
the counter binary) is shared, so the container's state crosses the link."""
import json
import os
import re
import subprocess
import time

import pytest
from helpers import REPO, vmlib

pytestmark = [pytest.mark.vm, pytest.mark.slow]

CRIU = os.path.join(REPO, "build", "criu", "criu")
OCIRUN = os.path.join(REPO, ".venv", "bin", "ocirun")
COUNTER = os.path.join(REPO, "build", "migrate", "counter")
RSH = f"python3 {REPO}/hack/vm/rsh.py"
# the benchmark of docs/migration.md: OCIRUN_MIGRATE_MIB=512 (VMs of 4x that memory)
MEM_MIB, HOT_KIB = int(os.environ.get("OCIRUN_MIGRATE_MIB", "48")), 512
VM_MEM = max(768, 4 * MEM_MIB)
COUNTER_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* counter MIB HOT_KIB: MIB of anonymous memory (page k holds k), the first HOT_KIB rewritten
   every 100 ms tick; one cold page checked per tick; "/count" = "N ok" or "N corrupt" */
int main(int argc, char **argv) {
    size_t n = (size_t)atol(argv[1]) << 20, hot = (size_t)atol(argv[2]) << 10, pages = n >> 12;
    unsigned long *p = malloc(n), i = 0, bad = 0, k = 0;
    for (size_t j = 0; j < pages; j++) p[j * 512] = j;
    for (;;) {
        i++;
        for (size_t j = 0; j < hot; j += 4096) p[j / 8 + 1] = i;
        k = (k + 1) % pages;
        if (p[k * 512] != k) bad = 1;
        char buf[64];
        int len = snprintf(buf, sizeof buf, "%lu %s\n", i, bad ? "corrupt" : "ok");
        int fd = open("/count.tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) { write(fd, buf, len); close(fd); rename("/count.tmp", "/count"); }
        usleep(100000);
    }
}
"""


def build_counter():
    if not os.path.exists(COUNTER):
        os.makedirs(os.path.dirname(COUNTER), exist_ok=True)
        with open(COUNTER + ".c", "w") as f:
            f.write(COUNTER_C)
        subprocess.run(["gcc", "-O2", "-static", "-o", COUNTER, COUNTER + ".c"], check=True)
    return COUNTER


def config():
    from ociruntime.spec import default_spec
    spec = default_spec(["/counter", str(MEM_MIB), str(HOT_KIB)], terminal=False)
    spec["root"] = {"path": "rootfs", "readonly": False}
    return json.dumps(spec)


def ok(v, cmd, timeout=120, **kw):
    rc, out, err = v.run(cmd, timeout=timeout, **kw)
    assert rc == 0, f"{v.name}: {cmd!r} -> {rc}\n{out}{err}"
    return out


def count(v, bundle):
    rc, out, _ = v.run(f"cat {bundle}/rootfs/count", timeout=30)
    if rc != 0 or len(out.split()) != 2:
        return 0
    n, health = out.split()
    assert health == "ok", f"{v.name}: the counter's memory changed: {out}"
    return int(n)


def wait_count(v, bundle, n, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        c = count(v, bundle)
        if c >= n:
            return c
        time.sleep(0.3)
    raise AssertionError(f"{v.name}: counter stuck below {n} (at {count(v, bundle)})")


@pytest.fixture(scope="module")
def hosts():
    lib = vmlib()
    if not os.access(CRIU, os.X_OK):
        pytest.skip("build/criu/criu is missing (tools/criu/install.sh builds it)")
    for tool in ("gcc", "rsync"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.skip(f"{tool} is not installed (hack/setup.sh installs it)")
    build_counter()
    with lib.pair(share=REPO, mem=VM_MEM) as (a, b):
        ok(b, f"{RSH} serve --bind {b.ip} </dev/null >/tmp/rsh.log 2>&1 &")
        ok(a, f"for i in $(seq 50); do {RSH} {b.ip} true && exit 0; sleep 0.2; done; exit 1")
        yield a, b


def migrate(a, b, cid, flags=""):
    bundle = f"/tmp/{cid}"
    ok(a, f"mkdir -p {bundle}/rootfs && cp -a {REPO}/build/rootfs/busybox/. {bundle}/rootfs/ && "
          f"cp {COUNTER} {bundle}/rootfs/counter && printf '%s' \"$CONFIG\" > {bundle}/config.json",
       env={"CONFIG": config()})
    # nothing of it on B: the move has to carry it over the link
    assert b.run(f"test -e {bundle}", timeout=30)[0] == 1
    ok(a, f"{OCIRUN} --criu {CRIU} run -d --bundle {bundle} {cid} </dev/null >/dev/null 2>&1")
    try:
        before = wait_count(a, bundle, 3)
        t = time.monotonic()
        out = ok(a, f"RSH='{RSH}' {REPO}/hack/migrate --criu {CRIU} {flags} {cid} {b.ip}",
                 timeout=300 + 2 * MEM_MIB)
        wall = time.monotonic() - t
        m = re.search(r"downtime_ms=(\d+).*", out)
        assert m, out
        print(f"\n{cid}: {m.group(0)}")   # the parts (with -s)
        # A: gone; B: running from B's copy of the bundle, counting on from where it was
        assert a.run(f"{OCIRUN} state {cid}", timeout=30)[0] != 0
        st = json.loads(ok(b, f"{OCIRUN} state {cid}"))
        assert st["status"] == "running" and st["bundle"] == bundle, st
        after = count(b, bundle)
        assert after >= before, (before, after)
        wait_count(b, bundle, after + 3)
        # criu's own cgroup2 mount resets the superblock flags (criu#3029): ocirun puts them
        # back, on A after the dumps, on B after the restore
        for v in (a, b):
            assert "nsdelegate" in ok(v, "grep ' /sys/fs/cgroup cgroup2 ' /proc/mounts"), v.name
        ok(b, f"{OCIRUN} delete --force {cid}")
        return int(m.group(1)), wall
    finally:
        a.run(f"{OCIRUN} delete --force {cid}; rm -rf {bundle}", timeout=60)
        b.run(f"{OCIRUN} delete --force {cid}; rm -rf {bundle}", timeout=60)


DOWNTIME = {}


def test_migrate_stop_and_copy(hosts, capsys):
    a, b = hosts
    DOWNTIME["stop-and-copy"], wall = migrate(a, b, "migrate-sc")
    with capsys.disabled():   # shown in CI's log too
        print(f"\nstop-and-copy of a {MEM_MIB} MiB counter, hostA -> hostB: "
              f"downtime {DOWNTIME['stop-and-copy']} ms (hack/migrate {wall:.1f} s)")


def test_migrate_pre_copy(hosts, capsys):
    a, b = hosts
    rc, out, err = a.run(f"{CRIU} check --feature mem_dirty_track", timeout=60)
    assert rc == 0, "the VM kernel should track dirty pages: " + out + err
    DOWNTIME["pre-copy"], wall = migrate(a, b, "migrate-pc", "-n 2 --page-server 27000")
    with capsys.disabled():
        print(f"\npre-copy (2 pre-dumps + page server) of a {MEM_MIB} MiB counter: downtime "
              f"{DOWNTIME['pre-copy']} ms (hack/migrate {wall:.1f} s); stop-and-copy: "
              f"{DOWNTIME.get('stop-and-copy', '?')} ms")
