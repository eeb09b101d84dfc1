"""The fault group's private RabbitMQ node and PostgreSQL cluster: started once per session, removed after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import private_broker, private_postgres
from tests.support.fault_rig import FaultRig, fault_rig


def require_private_services() -> None:
    """Skip when a private node or cluster cannot be started here, except under CI, where that is a failure."""
    missing = [why for why in (private_broker.available(), private_postgres.available()) if why]
    if missing:
        message = "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must have them)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultRig]:
    require_private_services()
    with fault_rig(Path(tmp_path_factory.mktemp("faults"))) as started:
        yield started
