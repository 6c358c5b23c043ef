"""The gdfast command line: `python -m gdfast <command> ...` (also installed as `gdfast`)."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each command module has add_parser(subparsers), which registers the command and
# sets `command` to its main(args) -> exit code.
COMMAND_MODULES = (
    "gdfast.demo",
    "gdfast.bench",
    "gdfast.train_cli",
    "gdfast.plot_cli",
    "gdfast.distributed.cli",
)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__, get_num_threads, kernel_isa, openmp_enabled

    parser = argparse.ArgumentParser(
        prog="python -m gdfast",
        description="gdfast: gradient-descent optimizers as OpenMP C kernels.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"gdfast {__version__} (OpenMP: {openmp_enabled()}, "
        f"threads: {get_num_threads()}, kernels: {kernel_isa()})",
    )
    subparsers = parser.add_subparsers(title="commands", dest="command_name")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command_name is None:  # bare `python -m gdfast`: the commands, not an error
        parser.print_help()
        return 0
    return args.command(args)


if __name__ == "__main__":
    sys.exit(main())
