"""One port served by several processes of one host (GLEANER_GATEWAY_PROCESSES): a supervisor binds a SO_REUSEPORT
socket per process, forks the processes, passes SIGTERM on and stops them all together.

Why not gunicorn's aiohttp worker: its processes share one listening socket, and asyncio accepts every connection
waiting on it in one go, so the first process awake takes a burst of keep-alive connections (a benchmark's 32)
alone; with a socket each the kernel spreads connections over the processes. Its arbiter also restarts a process
that failed to start (a database not migrated) forever, where Gleaner's services exit 2 with the fix, and it brings
its own logging and configuration. What is needed here is small: fork, forward a signal, wait.

A process that exits on its own (a crash, an out-of-memory kill) stops the others and the supervisor exits with its
code (1 at least): the service is never left half up. Its supervisor (a Kubernetes container restart, systemd,
`make run`'s user) starts it again, as it would a single process.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from gleaner.shared.errors import StartupError
from gleaner.shared.startup import bound_socket

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a process gets when its parent ends


def reuse_port_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one port, new connections spread over them by the kernel (SO_REUSEPORT). A plain
    bind first, so a port in use (another gateway, even one of several processes) is the usual StartupError."""
    with bound_socket(host, port) as probe:
        port = probe.getsockname()[1]  # port 0: the one the system picked, for every socket
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return [socket.create_server((host, port), family=family, backlog=1024, reuse_port=True) for _ in range(count)]


@dataclass
class Supervisor:
    """`run(serve, sockets)`: one forked process per socket, each running `serve(socket)`; returns the exit code."""

    service: str
    on_exit: Callable[[int], None] = lambda pid: None  # called in the supervisor with each ended process's pid
    children: dict[int, int] = field(default_factory=dict)  # pid -> index of its socket
    stopping: bool = False
    code: int = 0

    def run(self, serve: Callable[[socket.socket], None], sockets: list[socket.socket]) -> int:
        parent = os.getpid()
        # a signal that arrives while forking waits until every process is there to pass it on to
        saved_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._stop)
        for index, sock in enumerate(sockets):
            pid = os.fork()
            if pid == 0:
                _child(serve, sock, sockets, parent, saved_mask, self.service)
            self.children[pid] = index
            log.info("%s process %d of %d started (pid %d)", self.service, index + 1, len(sockets), pid)
        signal.pthread_sigmask(signal.SIG_SETMASK, saved_mask)
        while self.children:
            pid, status = os.wait()
            self._ended(pid, os.waitstatus_to_exitcode(status))
        return self.code

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, sig: signal.Signals) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):  # ended and not reaped yet
                os.kill(pid, sig)

    def _ended(self, pid: int, status: int) -> None:
        if self.children.pop(pid, None) is None:
            return
        self.on_exit(pid)
        code = _exit_code(status)
        if not self.stopping:
            how = f"was killed by signal {-status}" if status < 0 else f"exited with code {status}"
            log.error("%s process %d %s: stopping the others", self.service, pid, how)
            self.stopping = True
            self.code = code or 1
            self._signal_all(signal.SIGTERM)
        elif self.code == 0:
            self.code = code


def _exit_code(status: int) -> int:
    """A shell's exit code for a process's `waitstatus_to_exitcode`: 128 + n for a process killed by signal n."""
    return 128 - status if status < 0 else status


def _child(
    serve: Callable[[socket.socket], None],
    sock: socket.socket,
    sockets: list[socket.socket],
    parent: int,
    mask: set[int | signal.Signals],
    service: str,
) -> None:
    """In a forked process: serve on `sock` and exit; never returns into the supervisor's code."""
    code = 0
    try:
        os.setpgid(0, 0)  # Ctrl-C reaches the supervisor only, which passes one SIGTERM on
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        _end_with_parent(parent)
        for other in sockets:
            if other is not sock:
                other.close()
        serve(sock)
    except StartupError as exc:
        print(f"gleaner {service}: {exc}", file=sys.stderr)
        code = 2
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("%s process %d failed", service, os.getpid())
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def _end_with_parent(parent: int) -> None:
    """A process whose supervisor was killed (SIGKILL: no chance to pass anything on) gets SIGTERM and drains."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it ended before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
