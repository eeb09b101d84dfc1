"""`python -m bench`: run the chosen cases, print a table, write JSON to bench/results/."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench.cases import CASES, Sizes

TARGETS = {
    "batch": ("jobs_per_s", ">=", 20_000),
    "single": ("req_per_s", ">=", 2_000),
    "e2e": ("jobs_per_s", ">=", 3_000),
    "scale": ("reads.worst.p99_ms", "<", 100),
    "console": ("pages.worst.p99_ms", "<", 200),
    "prune": ("ratio", ">=", 0.8),
    "latency": ("submit_to_start.p99_ms", "<", 50),
    "scheduler": ("fire_lag.p99_ms", "<", 100),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the benchmark runs, measures nothing")
    parser.add_argument("--out", default="bench/results", help="directory for the JSON result")
    for field in dataclasses.fields(Sizes):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=None)
    return parser


def _sizes(args: argparse.Namespace) -> Sizes:
    base = Sizes.smoke() if args.smoke else Sizes()
    chosen = {f.name: getattr(args, f.name) for f in dataclasses.fields(Sizes) if getattr(args, f.name) is not None}
    return dataclasses.replace(base, **chosen)


async def _run(cases: list[str], sizes: Sizes) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in cases:
        started = time.perf_counter()
        print(f"== {name} ...", file=sys.stderr, flush=True)
        results[name] = await CASES[name](sizes)
        results[name]["case_seconds"] = round(time.perf_counter() - started, 1)
        print(f"   {json.dumps(results[name])}", file=sys.stderr, flush=True)
    return results


def _table(results: dict[str, Any]) -> str:
    lines = [f"{'case':<10} {'figure':<40} {'target'}"]
    for name, figures in results.items():
        for key, value in _flatten(figures):
            target = TARGETS.get(name)
            mark = f"{target[1]} {target[2]}" if target and target[0] == key else ""
            lines.append(f"{name:<10} {key + ' = ' + str(value):<40} {mark}")
    return "\n".join(lines)


def _flatten(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in figures.items():
        if isinstance(value, dict):
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((prefix + key, value))
    return out


def main() -> int:
    args = _parser().parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; choose from {', '.join(CASES)}", file=sys.stderr)
        return 2
    sizes = _sizes(args)
    results = asyncio.run(_run(cases, sizes))
    print(_table(results))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}{'-smoke' if args.smoke else ''}.json"
    meta = {"machine": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()}
    path.write_text(json.dumps({"meta": meta, "sizes": dataclasses.asdict(sizes), "results": results}, indent=2))
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
