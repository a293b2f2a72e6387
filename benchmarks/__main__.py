"""Run the benchmark suite: ``python -m benchmarks [--quick] [--json FILE] [NAME ...]``.

Prints, for each benchmark, the ratios of imagegen-tool against its baseline measured in the same run. The exit
status says only whether the benchmarks ran: the machine's load moves absolute times, so no figure fails a run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence

from . import bench_calls, bench_decoders, bench_imports, bench_partial_latency, bench_store_growth
from .harness import Figure, Settings, machine_description

BENCHMARKS: dict[str, Callable[[Settings], list[Figure]]] = {
    bench_calls.NAME: bench_calls.run,
    bench_partial_latency.NAME: bench_partial_latency.run,
    bench_imports.NAME: bench_imports.run,
    bench_store_growth.NAME: bench_store_growth.run,
    bench_decoders.NAME: bench_decoders.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: proves the suite runs (CI), in a minute")
    parser.add_argument("--json", metavar="FILE", help="also write the figures and the machine as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="also write the figures as a Markdown table (for README.md)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    settings = Settings(quick=args.quick)
    names = args.names or list(BENCHMARKS)
    machine = machine_description()
    print(f"imagegen-tool benchmarks ({'quick' if args.quick else 'full'} mode)")
    for key, value in machine.items():
        print(f"  {key}: {value}")
    figures: list[Figure] = []
    failed: list[str] = []
    for name in names:
        started = time.perf_counter()
        print(f"\n[{name}]", flush=True)
        try:
            found = BENCHMARKS[name](settings)
        except Exception as exc:  # one broken benchmark must not cost the figures of the others
            failed.append(name)
            print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
            continue
        for figure in found:
            print(figure.line(), flush=True)
        print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
        figures += found
    machine["load average at the end"] = machine_description()["load average (1/5/15 min)"]
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                {"machine": machine, "quick": args.quick, "figures": [f.as_dict() for f in figures]}, handle, indent=2
            )
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(markdown(machine, figures, quick=args.quick))
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}")
    return 1 if failed else 0


def markdown(machine: dict[str, str], figures: list[Figure], *, quick: bool) -> str:
    """The figures as the Markdown that ``benchmarks/README.md`` records."""
    lines = [f"Measured {machine['date']} ({'quick' if quick else 'full'} mode).", ""]
    lines += [f"- {key}: {value}" for key, value in machine.items() if key != "date"]
    lines += ["", "| figure | ratio | ours | baseline | target |", "| --- | --- | --- | --- | --- |"]
    for figure in figures:
        target = (
            ""
            if figure.target is None
            else f"≤ {figure.target:.2f}x: {'met' if figure.ratio <= figure.target else 'missed'}"
        )
        note = f" ({figure.note})" if figure.note else ""
        lines.append(
            f"| {figure.name}{note} | {figure.ratio:.3f}x | {figure.ours:.2f} {figure.unit} | "
            f"{figure.baseline:.2f} {figure.unit} ({figure.baseline_label}) | {target} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
