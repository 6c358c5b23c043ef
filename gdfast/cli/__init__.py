"""The gdfast command line: `python -m gdfast <command> ...` (also installed as `gdfast`).

demo    gdfast.cli.demo     all rules, C kernels against the NumPy reference
bench   gdfast.bench        the benchmark (the module lives with the optimizers)
train   gdfast.cli.train    one of gdfast's models trained with gdfast.fit
plot    gdfast.cli.plot     the gallery's figures (gdfast.viz)
distributed  gdfast.distributed.cli   distributed SGD: train, simulate
"""

from __future__ import annotations

import argparse
import importlib

# Each command module has add_parser(subparsers), which registers the command and
# sets `command` to its main(args) -> exit code.
COMMAND_MODULES = (
    "gdfast.cli.demo",
    "gdfast.bench",
    "gdfast.cli.train",
    "gdfast.cli.plot",
    "gdfast.distributed.cli",
)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__, get_num_threads, kernel_isa, openmp_enabled

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
