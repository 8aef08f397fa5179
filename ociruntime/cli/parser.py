"""A tiny Go-flag-style parser (no argparse: ~10 ms of imports). ``-flag`` and ``--flag`` are
the same; ``--flag=v`` and ``--flag v``; booleans take ``--flag``, ``--flag=true|false``;
repeated flags accumulate when declared ``many``; ``--help``/``-h`` everywhere."""
from ..errors import OciError


class UsageError(OciError):
    pass


class Flag:
    __slots__ = ("names", "dest", "kind", "default", "help", "many")

    def __init__(self, names, kind="str", default=None, help="", dest=None, many=False):
        self.names = names.split("|")
        self.dest = dest or self.names[0].replace("-", "_")
        self.kind = kind  # "bool" | "str" | "int"
        self.default = ([] if many else default)
        self.help = help
        self.many = many


class Command:
    """A command of the table. ``flags``: a list, or a function returning it, called the first
    time the command's flags are needed: only the command that runs builds its Flag
    objects (the whole table's are ~100, ~0.8 M instructions at every start)."""
    __slots__ = ("name", "func", "_flags", "args", "help", "min_args", "max_args",
                 "stop_at_positional")

    def __init__(self, name, func, flags=(), args="", help="", min_args=0, max_args=0,
                 stop_at_positional=False):
        self.name, self.func, self._flags, self.args, self.help = name, func, flags, args, help
        self.min_args, self.max_args = min_args, max_args
        # options end at the first positional (exec: the rest is the command line)
        self.stop_at_positional = stop_at_positional

    @property
    def flags(self):
        if callable(self._flags):
            self._flags = self._flags()
        return list(self._flags)


_TRUE = {"true": True, "1": True, "t": True, "false": False, "0": False, "f": False}


def parse_flags(flags, argv, stop_at_positional=False):
    """Returns (values dict, positionals, helped)."""
    byname = {}
    for f in flags:
        for n in f.names:
            byname[n] = f
    vals = {f.dest: (list(f.default) if f.many else f.default) for f in flags}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            pos.extend(argv[i + 1:])
            break
        if a.startswith("-") and len(a) > 1:
            name, eq, value = a.lstrip("-").partition("=")
            if name in ("help", "h"):
                return vals, pos, True
            f = byname.get(name)
            if f is None:
                raise UsageError(f"flag provided but not defined: -{name}")
            if f.kind == "bool":
                if eq:
                    if value.lower() not in _TRUE:
                        raise UsageError(f"invalid boolean value {value!r} for -{name}")
                    v = _TRUE[value.lower()]
                else:
                    v = True
            else:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: -{name}")
                    value = argv[i]
                v = value
                if f.kind == "int":
                    try:
                        v = int(value)
                    except ValueError:
                        raise UsageError(f"invalid value {value!r} for flag -{name}") from None
            if f.many:
                vals[f.dest].append(v)
            else:
                vals[f.dest] = v
        else:
            pos.append(a)
            if stop_at_positional:
                pos.extend(argv[i + 1:])
                break
        i += 1
    return vals, pos, False


def usage(prog, cmd):
    lines = [f"usage: {prog} {cmd.name} [options] {cmd.args}".rstrip(), "", cmd.help, ""]
    for f in cmd.flags:
        names = ", ".join(("-" if len(n) == 1 else "--") + n for n in f.names)
        arg = "" if f.kind == "bool" else " value"
        lines.append(f"  {names}{arg}\t{f.help}")
    lines.append("  --help, -h\tshow help")
    return "\n".join(lines) + "\n"
