"""`python -m gdfast.distributed train|simulate ...`; under MPI:
`mpiexec -n 4 python -m gdfast.distributed train ...`."""

from __future__ import annotations

import argparse
import sys

from .cli import __doc__ as CLI_DOC
from .cli import add_commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gdfast.distributed",
        description=CLI_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_commands(parser)
    args = parser.parse_args(argv)
    return args.command(args)


if __name__ == "__main__":
    sys.exit(main())
