"""`python -m benchmarks [run|plot|calibrate] ...`: the benchmark harness's command line.

  run        run the benchmarks (the default: `python -m benchmarks --quick` is `run --quick`)
  plot       redraw the PNG plots of a results JSON file
  calibrate  how many requests per second the open-loop load generator paces accurately here
  soak       traffic through routerd for minutes while faults rotate (`make soak`)
  ab         this checkout's routerd against another commit's, side by side

See benchmarks/README.md for the method and how to read the results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import ab, loadgen, plots, run, soak

COMMANDS = ("run", "plot", "calibrate", "soak", "ab")
DEFAULT_RATES = "5000,10000,20000,40000,60000,80000"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    run.add_arguments(
        commands.add_parser(
            "run",
            help="run the benchmarks, print the report, write JSON and plots",
            description=run.__doc__,
        )
    )
    plot = commands.add_parser("plot", help="redraw the plots of a results file")
    plot.add_argument("results", type=Path, help="a benchmarks/results/<timestamp>.json file")
    calibrate = commands.add_parser(
        "calibrate", help="measure the load generator's achieved rate against its target"
    )
    calibrate.add_argument(
        "--rates", default=DEFAULT_RATES, help=f"comma-separated req/s (default {DEFAULT_RATES})"
    )
    calibrate.add_argument("--seconds", type=float, default=3.0)
    calibrate.add_argument("--connections", type=int, default=64)
    calibrate.add_argument(
        "--python", action="store_true", help="calibrate the Python fallback, not loadgen.c"
    )
    soak.add_arguments(
        commands.add_parser(
            "soak",
            help="traffic through routerd while faults rotate; fails on any non-2xx or lost route",
            description=soak.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    ab.add_arguments(
        commands.add_parser(
            "ab",
            help="this checkout's routerd against another commit's, side by side",
            description=ab.__doc__,
        )
    )
    return top


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "run")
    args = parser().parse_args(argv)
    if args.command == "plot":
        lines = plots.redraw(args.results)
    elif args.command == "soak":
        return soak.run(args)
    elif args.command == "ab":
        return ab.run(args)
    elif args.command == "calibrate":
        rates = [float(rate) for rate in args.rates.split(",")]
        lines = loadgen.calibrate(rates, args.seconds, args.connections, args.python)
    else:
        return run.run(args)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
