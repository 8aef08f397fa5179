"""From the host: two VMs on the private link of hack/vm/vm.py pair() (the set-up CRIU migration
tests use, docs/vm.md): each reaches the other, a TCP stream arrives intact, and neither has a
route anywhere else."""
import time

import pytest
from helpers import vmlib

pytestmark = [pytest.mark.vm, pytest.mark.slow]

RECV = """
import socket
l = socket.socket()
l.bind(("0.0.0.0", 7000))
l.listen(1)
open("/tmp/ready", "w").close()
c, _ = l.accept()
with open("/tmp/got", "wb") as f:
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        f.write(d)
c.sendall(b"k")
"""

SEND = """
import socket, sys
d = open("/tmp/sent", "rb").read()
s = socket.create_connection((sys.argv[1], 7000), timeout=60)
s.sendall(d)
s.shutdown(socket.SHUT_WR)
assert s.recv(1) == b"k"
"""


def test_pair_private_link():
    lib = vmlib()
    t = time.monotonic()
    with lib.pair(mem=512) as (a, b):
        print(f"pair booted in {time.monotonic() - t:.1f}s (A {a.boot_s:.1f}s, B {b.boot_s:.1f}s)")
        assert (a.ip, b.ip) == ("169.254.77.1", "169.254.77.2")
        rc, out, err = a.run(f"/.vm/busybox ping -c 2 -W 10 {b.ip}", timeout=60)
        assert rc == 0 and "2 packets received" in out, out + err
        # an 8 MB TCP stream B -> A (what a checkpoint transfer does)
        rc, out, err = a.run('python3 -c "$RECV" </dev/null >/tmp/recv.log 2>&1 & '
                             "for i in $(seq 100); do [ -e /tmp/ready ] && exit 0; sleep 0.1; done;"
                             " exit 1", env={"RECV": RECV}, timeout=30)
        assert rc == 0, "no listener on hostA: " + out + err
        t = time.monotonic()
        rc, out, err = b.run("head -c 8000000 /dev/urandom > /tmp/sent && "
                             f'python3 -c "$SEND" {a.ip}'
                             " && md5sum < /tmp/sent", env={"SEND": SEND}, timeout=120)
        print(f"8 MB over the link in {time.monotonic() - t:.1f}s")
        assert rc == 0, out + err
        rc, out2, err = a.run("md5sum < /tmp/got; cat /tmp/recv.log", timeout=30)
        assert out2.split()[0] == out.split()[0], out2 + err
        for v in (a, b):
            rc, out, err = v.run("ip route; ip -o link show | grep -c ': eth'", timeout=30)
            assert "default" not in out and out.split()[-1] == "1", out
            assert v.run("hostname", timeout=30)[1].strip() == v.name
