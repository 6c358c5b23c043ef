"""`python -m gdfast plot --out DIR`: pictures of the ten rules at work.

For each surface chosen (default: all four) it writes, into DIR,
    SURFACE.png        the contours with every rule's path (hyper-parameters in the legend)
    SURFACE_loss.png   the loss against the step, one line per rule
    SURFACE.gif        the paths growing, frame by frame (with --gif)
and, if given,
    bench.png          GB/s per rule against the machine limit and torch (--bench FILE, the
                       JSON of `python -m gdfast bench`)
    history.png        loss per epoch of training histories (--history FILE: a JSON object
                       mapping a label to a history, a list of per-epoch dicts or a dict
                       of lists, with train_loss / val_loss series)

Each rule runs with its gallery learning rate (gdfast.gallery.GALLERY_LR: the middle
of its working range in the guide's sweep; a common 0.01 on the saddle) and the SPEC.md
defaults for the rest.  Needs the `viz` extra (matplotlib, Pillow).
"""

from __future__ import annotations

import argparse
import os

from .. import gallery
from ..rule_names import parse_list as parse_rules
from ..viz.gallery import SIZE, write_figures


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, got {text!r}")
    if width < 50 or height < 50:
        raise argparse.ArgumentTypeError(f"expected at least 50x50 pixels, got {text!r}")
    return width, height


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the `plot` command on the gdfast command line's subparsers."""
    parser = subparsers.add_parser(
        "plot",
        help="trajectory plots, GIFs, benchmark chart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="directory to write the figures into")
    parser.add_argument(
        "--surface",
        nargs="+",
        choices=sorted(gallery.SURFACES),
        default=list(gallery.SURFACES),
        metavar="NAME",
        help=f"one or more of {', '.join(gallery.SURFACES)} (default: all)",
    )
    parser.add_argument(
        "--rules",
        type=parse_rules,
        default=None,
        help="comma-separated rules in any case, or all (default: all)",
    )
    parser.add_argument("--gif", action="store_true", help="also write animated GIFs")
    parser.add_argument(
        "--no-loss",
        dest="loss",
        action="store_false",
        help="skip the SURFACE_loss.png loss-versus-step figures",
    )
    parser.add_argument(
        "--steps",
        type=_positive,
        default=None,
        help="steps per rule (default: the surface's budget, "
        + ", ".join(f"{k} {v}" for k, v in gallery.BUDGET.items())
        + ")",
    )
    parser.add_argument("--frames", type=_positive, default=30, help="GIF frames (default 30)")
    parser.add_argument(
        "--size",
        type=_size,
        default=SIZE,
        help=f"figure size in pixels, WIDTHxHEIGHT (default {SIZE[0]}x{SIZE[1]})",
    )
    parser.add_argument(
        "--colors",
        type=int,
        default=64,
        help="palette size of PNGs and GIFs, 2-256; 0 for full-colour PNGs (default 64)",
    )
    parser.add_argument("--bench", metavar="FILE", help="benchmark JSON to chart (bench.png)")
    parser.add_argument(
        "--history", metavar="FILE", help="JSON of training histories to chart (history.png)"
    )
    parser.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    """Run `plot` with parsed arguments; print each file written; 0 on success."""
    if args.frames < 2:
        raise SystemExit("plot: --frames must be >= 2")
    if args.colors != 0 and not 2 <= args.colors <= 256:
        raise SystemExit(f"plot: --colors must be 0 or in 2..256, got {args.colors}")
    for option, value in (("--bench", args.bench), ("--history", args.history)):
        if value is not None and not os.path.isfile(value):
            raise SystemExit(f"plot: {option}: no such file {value!r}")
    try:
        written = write_figures(
            args.out,
            list(dict.fromkeys(args.surface)),
            args.steps,
            args.gif,
            args.size,
            args.frames,
            args.colors or None,
            args.bench,
            args.history,
            args.loss,
            args.rules,
        )
    except ImportError as error:
        raise SystemExit(f"plot: {error}")
    except ValueError as error:
        raise SystemExit(f"plot: {error}")
    for path in written:
        print(path)
    return 0
