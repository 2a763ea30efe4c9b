"""One start time for every load-generator process of a run.

Process 0 listens; every other process connects (retrying until process 0 is up) and says
it is ready; once all have, process 0 picks a start a moment ahead on the wall clock and
tells each. Processes on different nodes compare wall clocks, which GKE keeps in sync
(NTP); each turns the start into its own monotonic clock. No API server, no extra objects.

Wire format, one line each way: "ready <index>\\n" to process 0, "start <epoch>\\n" back.
"""

from __future__ import annotations

import socket
import time

# Long enough for every process to get the answer and settle its connections.
START_DELAY_S = 1.0
# A process alone only needs its users spawned.
ALONE_DELAY_S = 0.1
RETRY_S = 0.2


class BarrierError(RuntimeError):
    """The processes did not all arrive in time."""


def _deadline_left(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise BarrierError(f"{what} within the start timeout")
    return left


def _read_line(connection: socket.socket, deadline: float, what: str) -> str:
    data = b""
    while not data.endswith(b"\n"):
        connection.settimeout(_deadline_left(deadline, what))
        chunk = connection.recv(64)
        if not chunk:
            raise BarrierError(f"{what}: the connection closed")
        data += chunk
    return data.decode("ascii").strip()


def _lead(processes: int, host: str, port: int, deadline: float) -> float:
    with socket.create_server((host, port), reuse_port=False, backlog=processes) as server:
        waiting: list[socket.socket] = []
        try:
            while len(waiting) < processes - 1:
                server.settimeout(
                    _deadline_left(
                        deadline, f"only {len(waiting) + 1} of {processes} processes ready"
                    )
                )
                connection, _ = server.accept()
                line = _read_line(connection, deadline, "a process did not say it was ready")
                if not line.startswith("ready "):
                    connection.close()
                    continue
                waiting.append(connection)
            start = time.time() + START_DELAY_S
            for connection in waiting:
                connection.sendall(f"start {start!r}\n".encode("ascii"))
        finally:
            for connection in waiting:
                connection.close()
    return start


def _follow(index: int, host: str, port: int, deadline: float) -> float:
    while True:
        try:
            connection = socket.create_connection((host, port), timeout=RETRY_S * 5)
        except OSError:
            _deadline_left(deadline, f"process {index} could not reach process 0 at {host}:{port}")
            time.sleep(RETRY_S)
            continue
        with connection:
            connection.sendall(f"ready {index}\n".encode("ascii"))
            line = _read_line(connection, deadline, f"process {index} got no start time")
        return float(line.removeprefix("start "))


def start_time(
    index: int, processes: int, address: str, timeout_s: float, listen_host: str = ""
) -> float:
    """The run's start (time.time()) agreed by all processes. `address` is process 0's
    host:port; process 0 listens on that port (on `listen_host`, default the same host)."""
    deadline = time.monotonic() + timeout_s
    if processes == 1:
        return time.time() + ALONE_DELAY_S
    host, port = address.rsplit(":", 1)
    if index == 0:
        return _lead(processes, listen_host or host, int(port), deadline)
    return _follow(index, host, int(port), deadline)


def monotonic_at(epoch: float) -> float:
    """The time.monotonic() reading at a given time.time()."""
    return time.monotonic() + (epoch - time.time())
