"""prestart/createRuntime hooks get the container's pid in their state (podman's and
containerd's hooks read it). The init's "hooks" message and the bridge's "pid" message race on
one pipe: the hooks must wait for the pid, never run with pid 0."""
import json


def test_hooks_state_has_the_init_pid(ocirun, make_bundle, tmp_path):
    b = make_bundle(["true"])
    out = tmp_path / "states"

    def hook(kind):
        return {"path": "/bin/sh", "args": ["sh", "-c", f"cat >> {out}; echo >> {out}"]}
    b.config["hooks"] = {"prestart": [hook("prestart")], "createRuntime": [hook("cr")]}
    b.write()
    for i in range(15):
        pidfile = tmp_path / f"pid{i}"
        ocirun.ok("create", "-b", b.path, "--pid-file", pidfile, f"hp{i}")
        pid = int(pidfile.read_text())
        states = [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
        out.write_text("")
        ocirun.ok("delete", "--force", f"hp{i}")
        assert len(states) == 2, states
        assert [s["pid"] for s in states] == [pid, pid], (i, states)
        assert all(s["status"] == "creating" and s["id"] == f"hp{i}" for s in states)
