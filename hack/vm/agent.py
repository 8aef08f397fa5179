"""Guest side of hack/vm/vm.py: runs in the VM (host python, from the 9p root) and executes
shell commands sent as JSON lines over the virtio-serial port named "agent".

Request:  {"cmd": "...", "cwd": "/path", "env": {...}, "timeout": 600}
Reply:    {"rc": N, "out": "...", "err": "..."}   (rc 124: timed out, the process group killed)
"""
import glob
import json
import os
import subprocess
import time


def port():
    for n in glob.glob("/sys/class/virtio-ports/*/name"):
        with open(n) as f:
            if f.read().strip() == "agent":
                return "/dev/" + n.split("/")[-2]
    raise SystemExit("agent: no virtio port named 'agent'")


def run(req):
    env = dict(os.environ)
    env.update(req.get("env") or {})
    p = subprocess.Popen(["/bin/sh", "-c", req["cmd"]], cwd=req.get("cwd") or "/", env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=req.get("timeout"))
        rc = p.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, 9)
        except OSError:
            pass
        out, err = p.communicate()
        rc = 124
        err += b"\nagent: timed out after %ds\n" % req["timeout"]
    return {"rc": rc, "out": out.decode(errors="replace"), "err": err.decode(errors="replace")}


def main():
    f = open(port(), "r+b", buffering=0)

    def send(obj):
        f.write((json.dumps(obj) + "\n").encode())

    send({"hello": os.uname().release})
    buf = b""
    connected = False
    while True:
        chunk = f.read(65536)
        if not chunk:
            if connected:        # the host process went away (even SIGKILLed): power off
                os.execv("/.vm/busybox", ["poweroff", "-f"])
            time.sleep(0.05)     # not connected yet: do not spin the emulated CPU
            continue
        connected = True         # the host sends a newline right after the hello
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if not line.strip():
                continue
            req = json.loads(line)
            if req.get("cmd") == "__poweroff__":
                send({"rc": 0, "out": "", "err": ""})
                os.sync()
                os.execv("/.vm/busybox", ["poweroff", "-f"])
            try:
                send(run(req))
            except Exception as e:  # report, keep serving
                send({"rc": 125, "out": "", "err": f"agent: {type(e).__name__}: {e}\n"})


if __name__ == "__main__":
    main()
