"""The fault group's private RabbitMQ node and PostgreSQL cluster: started once per session, removed after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fault_rig import FaultRig, fault_rig, require_private_services


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultRig]:
    require_private_services()
    with fault_rig(Path(tmp_path_factory.mktemp("faults"))) as started:
        yield started
