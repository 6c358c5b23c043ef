"""`python -m gdfast <command> ...`: the command line of gdfast.cli."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
