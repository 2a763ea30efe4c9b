"""The load generator: Locust as a library, headless, in closed or open loop.

Import this module only after gevent's monkey-patching (infra.loadgen.worker does it first).

Closed loop: N users, each sends its next request as soon as the previous one answered;
latency counts from the send.
Open loop: requests start on a schedule (`rate` per second on average) whether or not
earlier ones finished, and each latency counts from the request's *scheduled* start, so a
server that falls behind shows its queueing instead of slowing the clients down (no
coordinated omission). The schedule is Poisson by default: exponential gaps, as
independent users arrive (MLPerf's Server scenario); a uniform one sends on a fixed beat
and overstates what a server holds under real traffic. A request that cannot start because
`max_in_flight` requests are outstanding is an error of kind "client: too many in
flight", never a silent delay. Each request also
records how late it actually left (its send lag): a generator that falls behind its own
schedule would otherwise charge its lag to the server.

Several processes share one run: process `index` of `processes` sends every
`processes`-th request of the common schedule (one seed, so every process draws the same
one) (open loop) or its share of the users (closed loop), all on one start time.

Requests go to every serving pod in turn, straight to the pod (its address from the
driver, looked up again every few seconds through a headless Service's DNS when one is
named), not through a Service's virtual IP: that balances connections, not requests, and
would leave pods without load.
"""

from __future__ import annotations

import math
import random
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gevent
import grpc
import grpc.experimental.gevent as grpc_gevent
from gevent.event import Event
from gevent.pool import Pool
from locust import User, constant, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.exception import StopUser

from infra.loadgen.spec import WorkerSpec
from infra.loadgen.stats import Sample
from infra.loadgen.tensors import PREDICT_METHOD, Payload

grpc_gevent.init_gevent()  # gRPC calls yield to gevent instead of blocking it
# How often the serving pods are looked up again (the headless Service's DNS answers with
# the ready pods only).
RESOLVE_EVERY_S = 5.0
# Users started per second: up to 100 users start within a second, inside the warm-up.
SPAWN_RATE = 100


@dataclass(frozen=True)
class Share:
    """Process `index`'s part of a run."""

    spec: WorkerSpec
    index: int

    @property
    def url(self) -> str:
        """REST base URL or gRPC host:port, for the run's protocol."""
        return self.spec.rest_url if self.spec.protocol == "rest" else self.spec.grpc_target

    def schedule(self) -> Iterator[float]:
        """When this process's requests are due, in seconds from the start."""
        spec = self.spec
        total_s = spec.warmup_s + spec.duration_s
        draw = random.Random(spec.seed)
        index, offset = 0, 0.0
        while True:
            if spec.arrivals == "uniform":
                offset = index / spec.rate
            elif index:
                offset += draw.expovariate(spec.rate)
            if offset >= total_s:
                return
            if index % spec.processes == self.index:
                yield offset
            index += 1

    @property
    def own_users(self) -> int:
        """This process's share of the closed-loop users."""
        users, processes = self.spec.users, self.spec.processes
        return users // processes + (1 if self.index < users % processes else 0)

    @property
    def own_max_in_flight(self) -> int:
        return max(1, math.ceil(self.spec.max_in_flight / self.spec.processes))


@dataclass(frozen=True)
class Recording:
    """What one process recorded: every request, and its own CPU use over the run."""

    samples: list[Sample]
    total_s: float
    cpu_s: float
    wall_s: float
    sent: dict[str, int]  # requests sent to each serving pod
    # Time the process was ready to run but waited for a CPU (Linux), over the schedule,
    # and how many times it was given one.
    cpu_wait_s: float | None = None
    cpu_slices: int | None = None


class _Recorder:
    """Every request's start (on the run's clock), latency and error kind."""

    def __init__(self, t0: float) -> None:
        self.samples: list[Sample] = []
        self.t0 = t0
        self.schedule_done = Event()
        # When the last request of the schedule left, the process's CPU time then, and
        # its time spent waiting for a CPU.
        self.schedule_end: tuple[float, float, tuple[float, int] | None] | None = None

    def add(
        self, origin: float, finished: float, error: str | None, sent: float | None = None
    ) -> None:
        lag_ms = None if sent is None else max(0.0, (sent - origin) * 1000)
        self.samples.append(Sample(origin - self.t0, (finished - origin) * 1000, error, lag_ms))


def cpu_waits() -> tuple[float, int] | None:
    """How long this process's thread has waited, ready to run, for a CPU (the kernel's
    run-queue delay) and how many times it was given one (/proc/thread-self/schedstat);
    None where the kernel does not say. Every greenlet of the generator runs on this
    thread."""
    try:
        fields = Path("/proc/thread-self/schedstat").read_text().split()
        return int(fields[1]) / 1e9, int(fields[2])
    except (OSError, IndexError, ValueError):
        return None


def _addresses(host: str) -> list[str]:
    """The IPv4 and IPv6 addresses a name resolves to, sorted."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})


@dataclass
class Targets:
    """The serving pods requests go to, in turn: (name, REST base URL, gRPC target)."""

    endpoints: list[tuple[str, str, str]]
    resolve_host: str = ""
    resolve: Callable[[str], list[str]] = field(default=_addresses)
    _turn: int = 0
    sent: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: WorkerSpec) -> Targets:
        endpoints = [tuple(e) for e in spec.endpoints] or [
            ("service", spec.rest_url, spec.grpc_target)
        ]
        return cls([(str(a), str(b), str(c)) for a, b, c in endpoints], spec.resolve_host)

    def next(self) -> tuple[str, str, str]:
        endpoint = self.endpoints[self._turn % len(self.endpoints)]
        self._turn += 1
        self.sent[endpoint[0]] = self.sent.get(endpoint[0], 0) + 1
        return endpoint

    def refresh(self) -> None:
        """The pods the headless Service's DNS names now; the known names kept, a new pod
        named by its address, a gone one dropped. A failed lookup keeps what there is."""
        if not self.resolve_host:
            return
        try:
            addresses = self.resolve(self.resolve_host)
        except OSError:
            return
        if not addresses:
            return
        known = {urlsplit(rest).hostname: (name, rest, grpc) for name, rest, grpc in self.endpoints}
        template_rest, template_grpc = self.endpoints[0][1], self.endpoints[0][2]
        rest_port = urlsplit(template_rest).port
        grpc_port = template_grpc.rsplit(":", 1)[-1]
        self.endpoints = [
            known.get(address)
            or (address, f"http://{address}:{rest_port}", f"{address}:{grpc_port}")
            for address in addresses
        ]

    def watch(self) -> None:
        """Look the pods up again every few seconds, until killed."""
        while True:
            gevent.sleep(RESOLVE_EVERY_S)
            self.refresh()


Send = Callable[[Any, float], None]


def _senders(
    share: Share, payload: Payload, recorder: _Recorder, targets: Targets
) -> tuple[Send, Send]:
    path = f"/v1/models/{share.spec.model}:predict"
    headers = {"Content-Type": "application/json"}
    open_loop = share.spec.mode == "open"

    def send_rest(client: Any, due: float) -> None:
        _, rest_url, _ = targets.next()
        sent = time.monotonic()
        origin = due if open_loop else sent
        response = client.post(
            f"{rest_url}{path}", data=payload.rest_body, headers=headers, name="predict"
        )
        status = response.status_code or 0
        if status == 200:
            kind = None
        elif status == 0:
            kind = f"connection: {type(response.error).__name__}"
        else:
            kind = f"http {status}"
        recorder.add(origin, time.monotonic(), kind, sent if open_loop else None)

    def send_grpc(channels: Channels, due: float) -> None:
        _, _, target = targets.next()
        sent = time.monotonic()
        origin = due if open_loop else sent
        kind = None
        try:
            channels.call(target)(payload.grpc_request, timeout=share.spec.timeout_s)
        except grpc.RpcError as error:
            kind = f"grpc {error.code().name}"
        finished = time.monotonic()
        recorder.add(origin, finished, kind, sent if open_loop else None)
        events.request.fire(  # type: ignore[no-untyped-call]
            request_type="grpc",
            name="predict",
            response_time=(finished - origin) * 1000,
            response_length=0,
            exception=RuntimeError(kind) if kind else None,
            context={},
        )

    return send_rest, send_grpc


@dataclass
class Channels:
    """One gRPC channel (one HTTP/2 connection) per serving pod, opened on first use."""

    by_target: dict[str, Any] = field(default_factory=dict)

    def call(self, target: str) -> Any:
        if target not in self.by_target:
            channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            method = channel.unary_unary(
                PREDICT_METHOD,
                request_serializer=lambda raw: raw,
                response_deserializer=lambda raw: raw,
            )
            self.by_target[target] = (channel, method)
        return self.by_target[target][1]

    def close(self) -> None:
        for channel, _ in self.by_target.values():
            channel.close()


def _run_schedule(share: Share, recorder: _Recorder, send: Send, target: Any) -> None:
    pool = Pool(share.own_max_in_flight)
    start = recorder.t0
    for offset in share.schedule():
        due = start + offset
        gevent.sleep(max(0.0, due - time.monotonic()))
        if pool.full():
            recorder.add(due, due, "client: too many in flight")
            continue
        pool.spawn(send, target, due)
    recorder.schedule_end = (time.monotonic(), time.process_time(), cpu_waits())
    pool.join(timeout=share.spec.timeout_s)
    recorder.schedule_done.set()


def _user_class(
    share: Share, payload: Payload, recorder: _Recorder, targets: Targets
) -> type[User]:
    send_rest, send_grpc = _senders(share, payload, recorder, targets)
    open_loop = share.spec.mode == "open"

    class RestUser(FastHttpUser):
        host = targets.endpoints[0][1]
        wait_time = constant(0)
        network_timeout = share.spec.timeout_s
        connection_timeout = share.spec.timeout_s
        concurrency = share.own_max_in_flight if open_loop else 1

        @task
        def predict(self) -> None:
            if open_loop:
                _run_schedule(share, recorder, send_rest, self.client)
                raise StopUser
            send_rest(self.client, 0.0)

    class GrpcUser(User):
        wait_time = constant(0)

        def on_start(self) -> None:
            self.channels = Channels()

        def on_stop(self) -> None:
            self.channels.close()

        @task
        def predict(self) -> None:
            if open_loop:
                _run_schedule(share, recorder, send_grpc, self.channels)
                raise StopUser
            send_grpc(self.channels, 0.0)

    return RestUser if share.spec.protocol == "rest" else GrpcUser


def run_load(
    share: Share,
    payload: Payload,
    t0: float | None = None,
    on_start: Callable[[list[Sample]], Any] | None = None,
) -> Recording:
    """Drive this process's share of the load from `t0` (time.monotonic(); default now).
    `on_start` is given the list the requests are recorded in, as the run starts."""
    start = time.monotonic() if t0 is None else t0
    recorder = _Recorder(start)
    targets = Targets.of(share.spec)
    watcher = gevent.spawn(targets.watch) if targets.resolve_host else None
    environment = Environment(
        user_classes=[_user_class(share, payload, recorder, targets)], events=events
    )
    runner = environment.create_local_runner()
    users = 1 if share.spec.mode == "open" else share.own_users
    total_s = share.spec.warmup_s + share.spec.duration_s
    gevent.sleep(max(0.0, start - time.monotonic()))
    cpu_start, waits_start = time.process_time(), cpu_waits()
    if on_start:
        on_start(recorder.samples)
    if users:
        runner.start(users, spawn_rate=SPAWN_RATE)
    if share.spec.mode == "open" and users:
        recorder.schedule_done.wait(timeout=total_s + share.spec.timeout_s + 1)
    else:
        gevent.sleep(max(0.0, start + total_s - time.monotonic()))
    # CPU over the schedule only: the wait for the last answers is not the generator's work.
    ended, cpu_end, waits_end = recorder.schedule_end or (
        time.monotonic(),
        time.process_time(),
        cpu_waits(),
    )
    wall_s, cpu_s = max(ended - start, 1e-3), cpu_end - cpu_start
    waited, slices = (
        (waits_end[0] - waits_start[0], waits_end[1] - waits_start[1])
        if waits_end is not None and waits_start is not None
        else (None, None)
    )
    runner.quit()
    if watcher is not None:
        watcher.kill()
    return Recording(recorder.samples, total_s, cpu_s, wall_s, dict(targets.sent), waited, slices)
