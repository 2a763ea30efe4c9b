"""The load generator: Locust as a library, headless, in closed or open loop.

Import this module only after gevent's monkey-patching (infra.loadgen.worker does it first).

Closed loop: N users, each sends its next request as soon as the previous one answered;
latency counts from the send.
Open loop: requests start on a fixed schedule (`rate` per second) whether or not earlier
ones finished, and each latency counts from the request's *scheduled* start, so a server
that falls behind shows its queueing instead of slowing the clients down (no coordinated
omission). A request that cannot start because `max_in_flight` requests are outstanding
is an error of kind "client: too many in flight", never a silent delay. Each request also
records how late it actually left (its send lag): a generator that falls behind its own
schedule would otherwise charge its lag to the server.

Several processes share one run: process `index` of `processes` sends every
`processes`-th request of the common schedule (open loop) or its share of the users
(closed loop), all on one start time.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
# A gRPC channel multiplexes every call over one HTTP/2 connection, and a Service's virtual
# IP balances connections, not calls: one channel would send all of a process's calls to
# one serving pod. Several channels, each with its own connection (a local subchannel
# pool), spread them.
GRPC_CHANNELS = 4
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


class _Recorder:
    """Every request's start (on the run's clock), latency and error kind."""

    def __init__(self, t0: float) -> None:
        self.samples: list[Sample] = []
        self.t0 = t0
        self.schedule_done = Event()
        # When the last request of the schedule left, and the process's CPU time then.
        self.schedule_end: tuple[float, float] | None = None

    def add(
        self, origin: float, finished: float, error: str | None, sent: float | None = None
    ) -> None:
        lag_ms = None if sent is None else max(0.0, (sent - origin) * 1000)
        self.samples.append(Sample(origin - self.t0, (finished - origin) * 1000, error, lag_ms))


Send = Callable[[Any, float], None]


def _senders(share: Share, payload: Payload, recorder: _Recorder) -> tuple[Send, Send]:
    path = f"/v1/models/{share.spec.model}:predict"
    headers = {"Content-Type": "application/json"}
    open_loop = share.spec.mode == "open"

    def send_rest(client: Any, due: float) -> None:
        sent = time.monotonic()
        origin = due if open_loop else sent
        response = client.post(path, data=payload.rest_body, headers=headers, name="predict")
        status = response.status_code or 0
        if status == 200:
            kind = None
        elif status == 0:
            kind = f"connection: {type(response.error).__name__}"
        else:
            kind = f"http {status}"
        recorder.add(origin, time.monotonic(), kind, sent if open_loop else None)

    def send_grpc(call: Any, due: float) -> None:
        sent = time.monotonic()
        origin = due if open_loop else sent
        kind = None
        try:
            call(payload.grpc_request, timeout=share.spec.timeout_s)
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


def _run_schedule(share: Share, recorder: _Recorder, send: Send, target: Any) -> None:
    pool = Pool(share.own_max_in_flight)
    total = int(share.spec.rate * (share.spec.warmup_s + share.spec.duration_s))
    start = recorder.t0
    for index in range(share.index, total, share.spec.processes):
        due = start + index / share.spec.rate
        gevent.sleep(max(0.0, due - time.monotonic()))
        if pool.full():
            recorder.add(due, due, "client: too many in flight")
            continue
        pool.spawn(send, target, due)
    recorder.schedule_end = (time.monotonic(), time.process_time())
    pool.join(timeout=share.spec.timeout_s)
    recorder.schedule_done.set()


def _user_class(share: Share, payload: Payload, recorder: _Recorder) -> type[User]:
    send_rest, send_grpc = _senders(share, payload, recorder)
    open_loop = share.spec.mode == "open"

    class RestUser(FastHttpUser):
        host = share.url
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
            self.channels = [
                grpc.insecure_channel(share.url, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(GRPC_CHANNELS)
            ]
            calls = itertools.cycle(
                [
                    channel.unary_unary(
                        PREDICT_METHOD,
                        request_serializer=lambda raw: raw,
                        response_deserializer=lambda raw: raw,
                    )
                    for channel in self.channels
                ]
            )
            self.call = lambda request, timeout: next(calls)(request, timeout=timeout)

        def on_stop(self) -> None:
            for channel in self.channels:
                channel.close()

        @task
        def predict(self) -> None:
            if open_loop:
                _run_schedule(share, recorder, send_grpc, self.call)
                raise StopUser
            send_grpc(self.call, 0.0)

    return RestUser if share.spec.protocol == "rest" else GrpcUser


def run_load(share: Share, payload: Payload, t0: float | None = None) -> Recording:
    """Drive this process's share of the load from `t0` (time.monotonic(); default now)."""
    start = time.monotonic() if t0 is None else t0
    recorder = _Recorder(start)
    environment = Environment(user_classes=[_user_class(share, payload, recorder)], events=events)
    runner = environment.create_local_runner()
    users = 1 if share.spec.mode == "open" else share.own_users
    total_s = share.spec.warmup_s + share.spec.duration_s
    gevent.sleep(max(0.0, start - time.monotonic()))
    cpu_start = time.process_time()
    if users:
        runner.start(users, spawn_rate=SPAWN_RATE)
    if share.spec.mode == "open" and users:
        recorder.schedule_done.wait(timeout=total_s + share.spec.timeout_s + 1)
    else:
        gevent.sleep(max(0.0, start + total_s - time.monotonic()))
    # CPU over the schedule only: the wait for the last answers is not the generator's work.
    ended, cpu_end = recorder.schedule_end or (time.monotonic(), time.process_time())
    wall_s, cpu_s = max(ended - start, 1e-3), cpu_end - cpu_start
    runner.quit()
    return Recording(recorder.samples, total_s, cpu_s, wall_s)
