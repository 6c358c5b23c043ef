"""The wait-policy table of docs/distributed.md from the runs of scripts/distributed_defaults.py.

    python scripts/distributed_defaults.py --repeats 2 \
        --settings this:-:backoff this:-:sleep this:-:yield --out runs.json
    python bench/distributed_defaults_table.py runs.json [more.json ...]

Pools every run of the files (several invocations: more repeats), and prints one row per
configuration: the median job time of each wait policy (seconds, the time `train` prints),
the best in italics, the default (`wait="auto"`, transport.resolve_wait) in bold, and the
default's ratio to the best; then the load averages the runs saw.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from pathlib import Path

from gdfast.distributed.transport import resolve_wait


def configurations() -> dict:
    """scripts/distributed_defaults.py's CONFIGURATIONS: name -> (ranks, train arguments)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / "distributed_defaults.py"
    spec = importlib.util.spec_from_file_location("distributed_defaults", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CONFIGURATIONS


def main() -> None:
    runs = [run for path in sys.argv[1:] for run in json.load(open(path))]
    known = configurations()
    waits = sorted({run["wait"] for run in runs})
    print("| configuration | " + " | ".join(waits) + " | runs | auto / best |")
    print("|---|" + "---:|" * (len(waits) + 2))
    for configuration in sorted({run["configuration"] for run in runs}):
        mine = [run for run in runs if run["configuration"] == configuration]
        median = {
            wait: statistics.median(
                run["seconds"] for run in mine if run["wait"] == wait and run["seconds"]
            )
            for wait in waits
        }
        best = min(median.values())
        arguments = known[configuration][1]
        servers = int(arguments[arguments.index("--servers") + 1])
        default = resolve_wait("auto", servers)
        cells = []
        for wait in waits:
            cell = f"{median[wait]:.2f}"
            cell = f"*{cell}*" if median[wait] == best else cell
            cells.append(f"**{cell}**" if wait == default else cell)
        row = " | ".join(cells)
        print(f"| {configuration} | {row} | {len(mine)} | {median[default] / best:.2f} |")
    loads = [run["load"] for run in runs]
    print(
        f"\nload average before each run: {min(loads):.1f}-{max(loads):.1f} "
        f"(median {statistics.median(loads):.1f}), {len(runs)} runs"
    )


if __name__ == "__main__":
    main()
