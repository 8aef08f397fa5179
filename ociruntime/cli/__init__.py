"""The thin command line: a declarative table of commands and flags (commands.py) mapped onto
library calls."""
