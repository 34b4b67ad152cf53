"""`abmhub serve --workers N`: N server processes on one port, each with its own listening socket.

uvicorn's own supervisor hands every worker the same listening socket, and the worker that
happens to be awake accepts the next connection: two keep-alive clients both landed on one
worker, and `--workers 2` served 1.01 times what one process did (docs/performance.md,
"Server processes"). Here each server process binds its own socket to the port with
SO_REUSEPORT, and the kernel spreads new connections over the sockets of the live processes.
A process that dies takes its socket with it (its queued connections are reset, none is
routed to it again); the supervisor starts another in its place.

The parent binds nothing: it checks once that the port can be bound, then only starts,
watches and stops the server processes. SIGTERM or SIGINT: each process drains the requests
in flight (uvicorn's graceful shutdown), then the parent returns.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
from typing import Any

log = logging.getLogger("abmhub.serve")

BACKLOG = 2048  # uvicorn's default
WATCH_S = 0.5  # how often the supervisor looks for a dead server process
STOP_S = 45.0  # a process still running this long after SIGTERM is killed (uvicorn drains for 30 s)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on (host, port), sharing the port with the other server processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def _serve(options: dict[str, Any], host: str, port: int) -> None:
    """One server process: uvicorn on a socket of its own (the target of a spawned process)."""
    import uvicorn

    # uvicorn re-raises SIGTERM once it has drained: exit 0, as `abmhub serve` does.
    signal.signal(signal.SIGTERM, _exit)
    server = uvicorn.Server(uvicorn.Config(**options))
    server.run(sockets=[listening_socket(host, port)])


def _exit(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def supervise(options: dict[str, Any], *, workers: int, host: str, port: int) -> None:
    """Run `workers` server processes of uvicorn `options` (an import string and factory, as
    every process builds its own app) until SIGTERM or SIGINT, replacing any that dies."""
    if port == 0:
        raise ValueError("--workers needs a port number: each server process binds the same one")
    listening_socket(host, port).close()  # the port is free (or shared by SO_REUSEPORT): say so now
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start() -> Any:
        process = context.Process(target=_serve, args=(options, host, port), name="abmhub-server", daemon=False)
        process.start()
        return process

    def stop(_signum: int, _frame: object) -> None:
        stopping.set()

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    processes = [start() for _ in range(workers)]
    try:
        while not stopping.wait(WATCH_S):
            for index, process in enumerate(processes):
                if not process.is_alive() and not stopping.is_set():
                    log.warning("server process %s exited (%s); starting another", process.pid, process.exitcode)
                    processes[index] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: drain, then exit
        for process in processes:
            process.join(STOP_S)
            if process.is_alive():
                log.warning("server process %s still running %s s after SIGTERM: killed", process.pid, STOP_S)
                process.kill()
                process.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
