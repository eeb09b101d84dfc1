"""The supervisor behind GLEANER_GATEWAY_PROCESSES, with stand-in processes (nothing else running)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

from gleaner.shared.errors import StartupError
from gleaner.shared.processes import reuse_port_sockets

SUPERVISED = """
import sys, time
from gleaner.shared.processes import Supervisor, reuse_port_sockets

sockets = reuse_port_sockets("127.0.0.1", 0, 3)

def serve(sock):
    if sock is sockets[{failing}]:
        raise SystemExit({code})
    time.sleep(60)

sys.exit(Supervisor("test").run(serve, sockets))
"""


def supervise(failing: int, code: int) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(SUPERVISED.format(failing=failing, code=code))
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20, check=False)


def test_every_socket_of_a_set_listens_on_one_port() -> None:
    sockets = reuse_port_sockets("127.0.0.1", 0, 3)
    try:
        assert len({sock.getsockname()[1] for sock in sockets}) == 1
    finally:
        for sock in sockets:
            sock.close()


def test_a_port_already_in_use_is_refused_with_its_fix() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=f"port {port} on 127.0.0.1 is in use"):
            reuse_port_sockets("127.0.0.1", port, 2)


def test_a_process_that_exits_on_its_own_stops_the_others_and_the_set_exits_with_its_code() -> None:
    result = supervise(failing=1, code=3)  # the others would sleep a minute: the timeout says they were stopped

    assert result.returncode == 3


def test_a_process_that_exits_0_on_its_own_still_ends_the_set_with_a_failure() -> None:
    result = supervise(failing=0, code=0)

    assert result.returncode == 1
