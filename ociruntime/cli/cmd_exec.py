"""``ocirun exec``: the flags are runc's (_exec_flags in commands.py); options stop at the
container id, so ``ocirun exec ID sh -c 'x -y'`` passes ``-c`` and ``'x -y'`` to sh."""


def do_exec(ctx, v, pos):
    cid, args = pos[0], pos[1:]
    r = ctx.rt.exec(
        cid, args=args, process=v["process"], tty=v["tty"],
        console_socket=v["console_socket"], detach=v["detach"], pid_file=v["pid_file"],
        preserve_fds=v["preserve_fds"], cwd=v["cwd"], env=v["env"], user=v["user"],
        additional_gids=v["additional_gids"], caps=v["cap"],
        no_new_privs=True if v["no_new_privs"] else None, apparmor=v["apparmor"],
        process_label=v["process_label"], cgroup=v["cgroup"],
        ignore_paused=v["ignore_paused"])
    if v["detach"]:
        if v["pidfd_socket"]:
            from .commands import _send_pidfd
            _send_pidfd(v["pidfd_socket"], r)
        r = 0
    # done: skip the interpreter's teardown (module and object finalization, ~1-3 ms)
    from .. import osfast as os
    import sys
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(r)
