"""`python -m tests.faults.chaos` (`make chaos`): issue 10's fault scenarios at ten times the test sizes.

It starts its own private RabbitMQ node and PostgreSQL cluster (never the machine's services), runs the
scenarios one after another and prints one Markdown table row per scenario: jobs acknowledged, finished,
lost, re-executed, completed twice, the recovery seconds, and the promises that did not hold. Exit status:
0 when every promise held, 1 when one did not, 2 when a scenario could not run at all.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.faults.outcome import Outcome
from tests.faults.scenarios import SCENARIOS, Sizes
from tests.support.fault_rig import FaultRig, fault_rig

CRASHED = "crashed: "
COLUMNS = ("scenario", "acknowledged", "finished", "lost", "re-executed", "completed twice", "recovery s", "promises")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}")
    parser.add_argument("--scale", type=int, default=10, help="times the `make test` counts (default 10)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and short faults: proves it runs")
    parser.add_argument("--logs", type=Path, default=None, help="keep the service logs here (default: a temp dir)")
    return parser


async def run(rig: FaultRig, names: Sequence[str], sizes: Sizes) -> list[Outcome]:
    """Run the named scenarios in order; a scenario that raises is reported, and the next one still runs."""
    outcomes = []
    for name in names:
        started = time.monotonic()
        print(f"== {name} ...", file=sys.stderr, flush=True)
        try:
            outcome = await SCENARIOS[name](rig, sizes)
        except Exception as exc:  # noqa: BLE001 - one scenario's crash must not hide the others' figures
            outcome = Outcome(name, problems=[f"{CRASHED}{exc!r}"])
        outcome.figures["scenario_s"] = round(time.monotonic() - started, 1)
        print(outcome.report(), file=sys.stderr, flush=True)
        outcomes.append(outcome)
    return outcomes


def table(outcomes: Sequence[Outcome]) -> str:
    """The Markdown table of the README's reliability section."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for o in outcomes:
        recovery = "-" if o.recovery_s is None else f"{o.recovery_s:.2f}"
        promises = "all held" if not o.problems else "; ".join(o.problems)
        cells = (o.scenario, o.acknowledged, o.finished, o.lost, o.re_executed, o.completed_twice, recovery, promises)
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


def exit_status(outcomes: Sequence[Outcome]) -> int:
    if any(p.startswith(CRASHED) for o in outcomes for p in o.problems):
        return 2
    return 1 if any(o.problems for o in outcomes) else 0


@dataclass(frozen=True, slots=True)
class Plan:
    names: tuple[str, ...]
    sizes: Sizes
    logs: Path | None


def choose(argv: Sequence[str] | None = None) -> Plan:
    """What to run, from the command line; an unknown scenario exits with status 2 and the choices."""
    parser = _parser()
    args = parser.parse_args(argv)
    names = tuple(n.strip() for n in args.scenarios.split(",") if n.strip())
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    return Plan(names, Sizes.smoke() if args.smoke else Sizes().scaled(args.scale), args.logs)


def main(argv: Sequence[str] | None = None) -> int:
    plan = choose(argv)
    with fault_rig(plan.logs) as rig:
        where = f"private RabbitMQ {rig.rabbit.node} :{rig.rabbit.port}, PostgreSQL :{rig.postgres.port}"
        print(f"{where}, logs in {rig.log_root}", file=sys.stderr, flush=True)
        outcomes = asyncio.run(run(rig, plan.names, plan.sizes))
    print(table(outcomes))
    return exit_status(outcomes)


if __name__ == "__main__":
    sys.exit(main())
