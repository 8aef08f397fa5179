"""From the host: two VMs on the private link of hack/vm/vm.py pair() (the set-up CRIU migration
tests use, docs/vm.md): each reaches the other, and neither has a route anywhere else."""
import time

import pytest
from helpers import vmlib

pytestmark = [pytest.mark.vm, pytest.mark.slow]


def test_pair_private_link():
    lib = vmlib()
    t = time.monotonic()
    with lib.pair(mem=512) as (a, b):
        print(f"pair booted in {time.monotonic() - t:.1f}s (A {a.boot_s:.1f}s, B {b.boot_s:.1f}s)")
        assert (a.ip, b.ip) == ("169.254.77.1", "169.254.77.2")
        rc, out, err = a.run(f"/.vm/busybox ping -c 2 -W 10 {b.ip}", timeout=60)
        assert rc == 0 and "2 packets received" in out, out + err
        # a TCP stream B -> A (what a checkpoint transfer uses)
        rc, out, err = a.run("/.vm/busybox nc -l -p 7000 >/tmp/got 2>/dev/null </dev/null &"
                             " sleep 0.5; echo ok",
                             timeout=30)
        assert rc == 0, out + err
        rc, out, err = b.run(f"head -c 1000000 /dev/urandom | tee /tmp/sent | "
                             f"/.vm/busybox nc -w 5 {a.ip} 7000; md5sum < /tmp/sent", timeout=60)
        assert rc == 0, out + err
        sent = out.split()[0]
        rc, out, err = a.run("for i in $(seq 50); do [ -s /tmp/got ] && "
                             "[ $(stat -c %s /tmp/got) = 1000000 ] && break; sleep 0.1; done; "
                             "md5sum < /tmp/got", timeout=60)
        assert out.split()[0] == sent, out + err
        for v in (a, b):
            rc, out, err = v.run("ip route; ip -o link show | grep -c ': eth'", timeout=30)
            assert "default" not in out and out.split()[-1] == "1", out
            assert v.run("hostname", timeout=30)[1].strip() == v.name
