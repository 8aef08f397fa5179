"""A minimal remote shell for the test VMs, which have no sshd: lets ``hack/migrate`` (and the
rsync it runs) reach the other VM over the private link of ``pair()`` (docs/migration.md).

    python3 hack/vm/rsh.py serve [--bind ADDR] [--port P]     # on B (daemon: redirect stdio)
    RSH="python3 hack/vm/rsh.py" hack/migrate ID 169.254.77.2  # on A
    python3 hack/vm/rsh.py [-p P] [-l USER] HOST COMMAND...    # what $RSH is called as

NO AUTHENTICATION: whoever reaches the port runs commands as the server's user. Only for the
point-to-point link between two throw-away VMs; never on a real network (use ssh there).

Wire format: the client sends one JSON line {"cmd": "..."}, then its stdin as a raw stream
(half-closed at EOF). The server answers with frames: kind (1 stdout, 2 stderr, 3 exit
status) as one byte, a 4-byte big-endian length, the payload.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import threading

PORT = 2222


def _frames_out(sock, lock, kind, f):
    while True:
        d = os.read(f.fileno(), 65536)
        if not d:
            return
        with lock:
            sock.sendall(struct.pack(">BI", kind, len(d)) + d)


def _handle(conn):
    try:
        line = b""
        while not line.endswith(b"\n"):
            c = conn.recv(1)
            if not c:
                return
            line += c
        cmd = json.loads(line)["cmd"]
        p = subprocess.Popen(["/bin/sh", "-c", cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)

        def pump_in():
            try:
                while True:
                    d = conn.recv(65536)
                    if not d:
                        break
                    p.stdin.write(d)
                    p.stdin.flush()
            except OSError:
                pass
            finally:
                try:
                    p.stdin.close()
                except OSError:
                    pass

        lock = threading.Lock()
        threading.Thread(target=pump_in, daemon=True).start()
        err = threading.Thread(target=_frames_out, args=(conn, lock, 2, p.stderr), daemon=True)
        err.start()
        _frames_out(conn, lock, 1, p.stdout)
        err.join()
        rc = p.wait()
        rc = rc if rc >= 0 else 128 - rc
        with lock:
            conn.sendall(struct.pack(">BI", 3, 1) + bytes([rc & 255]))
    except (OSError, ValueError, KeyError):
        pass
    finally:
        conn.close()


def serve(bind, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((bind, port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_handle, args=(conn,), daemon=True).start()


def _recv_exact(sock, n):
    b = b""
    while len(b) < n:
        d = sock.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b


def client(host, port, cmd):
    try:
        s = socket.create_connection((host, port), timeout=30)
    except OSError as e:
        sys.stderr.write(f"rsh: cannot connect to {host}:{port}: {e.strerror or e}\n")
        return 255
    s.settimeout(None)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")

    def pump_in():
        try:
            while True:
                d = os.read(0, 65536)
                if not d:
                    break
                s.sendall(d)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=pump_in, daemon=True).start()
    try:
        while True:
            kind, n = struct.unpack(">BI", _recv_exact(s, 5))
            d = _recv_exact(s, n)
            if kind == 3:
                return d[0]
            os.write(1 if kind == 1 else 2, d)
    except EOFError:
        sys.stderr.write("rsh: connection closed without an exit status\n")
        return 255


def main(argv):
    if argv[:1] == ["serve"]:
        bind, port, i = "0.0.0.0", PORT, 1
        while i < len(argv):
            if argv[i] == "--bind":
                bind = argv[i + 1]
            elif argv[i] == "--port":
                port = int(argv[i + 1])
            else:
                sys.exit(f"rsh: unknown option {argv[i]}")
            i += 2
        serve(bind, port)
        return 0
    port = int(os.environ.get("OCIRUN_RSH_PORT", PORT))
    while argv and argv[0].startswith("-"):
        if argv[0] == "-p":
            port = int(argv[1])
        elif argv[0] != "-l":        # -l USER (rsync's user@host): the server's user is used
            sys.exit(f"rsh: unknown option {argv[0]}")
        argv = argv[2:]
    if len(argv) < 2:
        sys.exit("usage: rsh.py [-p PORT] HOST COMMAND... | rsh.py serve [--bind A] [--port P]")
    host = argv[0].rpartition("@")[2]
    return client(host, port, " ".join(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
