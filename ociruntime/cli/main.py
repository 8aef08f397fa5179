"""Entry point of the ``ocirun`` command (skeleton; the command table comes next)."""
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("--version", "-version", "-v"):
        from .. import __version__
        print(f"ocirun version {__version__}\ncommit: unknown\nspec: 1.3.0")
        return 0
    sys.stderr.write("ocirun: not implemented yet\n")
    return 1
