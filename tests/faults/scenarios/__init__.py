"""The fault scenarios of issue 10, each against a private broker and cluster; `make test` and `make chaos` run them.

Every scenario starts real services on a `FaultRig` scene, injects its fault on the private node or cluster
only, and returns an `Outcome`: the figures of the chaos table and every promise that did not hold.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.faults.outcome import Outcome
from tests.faults.scenarios.broker_outage import broker_outage
from tests.faults.scenarios.connection_drop import connection_drop
from tests.faults.scenarios.leader_kill import leader_kills
from tests.faults.scenarios.plain import plain_run
from tests.faults.scenarios.poison_messages import poison_messages
from tests.faults.scenarios.postgres_crash import postgres_outage
from tests.faults.scenarios.worker_kill import worker_kill
from tests.faults.sizes import Sizes
from tests.support.fault_rig import FaultRig

Scenario = Callable[[FaultRig, Sizes], Awaitable[Outcome]]

SCENARIOS: dict[str, Scenario] = {
    "plain": plain_run,
    "connection-drop": connection_drop,
    "broker-outage": broker_outage,
    "postgres-crash": postgres_outage,
    "worker-kill": worker_kill,
    "leader-kill": leader_kills,
    "poison": poison_messages,
}

__all__ = ["SCENARIOS", "Scenario", "Sizes"]
