"""TF Serving stand-ins on 127.0.0.1 with a known service time and capacity, for checking
the load generator: REST (metadata + predict) and gRPC (Predict)."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc

from infra.loadgen.tensors import PREDICT_METHOD
from infra.model.apis import PredictRequest, PredictResponse
from tests.json_api import send_json

METADATA = {
    "model_spec": {"name": "toy", "signature_name": "", "version": "1"},
    "metadata": {
        "signature_def": {
            "signature_def": {
                "serving_default": {
                    "inputs": {
                        "image_input": {
                            "dtype": "DT_FLOAT",
                            "tensor_shape": {
                                "dim": [
                                    {"size": "-1"},
                                    {"size": "4"},
                                    {"size": "4"},
                                    {"size": "3"},
                                ],
                                "unknown_rank": False,
                            },
                            "name": "serving_default_image_input:0",
                        }
                    },
                    "outputs": {},
                    "method_name": "tensorflow/serving/predict",
                }
            }
        }
    },
}


class _Slots:
    """`workers` slots served first come, first served: a freed slot is handed straight to
    the request that has waited longest. (threading.Semaphore lets a request that arrives
    just as a slot frees take it before the woken waiter, which then waits again behind
    everyone: its queue is not FCFS, and its p99 came out about 3% over an FCFS queue's
    with the same arrivals and service times.)"""

    def __init__(self, workers: int) -> None:
        self._free = workers
        self._lock = threading.Lock()
        self._waiting: deque[tuple[threading.Event, list[float]]] = deque()

    def acquire(self) -> float:
        """Wait for a slot; the time it became this request's (perf_counter)."""
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return time.perf_counter()
            handed: list[float] = []
            woken = threading.Event()
            self._waiting.append((woken, handed))
        woken.wait()
        return handed[0]

    def release(self) -> None:
        with self._lock:
            if self._waiting:
                woken, handed = self._waiting.popleft()
                handed.append(time.perf_counter())
                woken.set()
            else:
                self._free += 1


class Capacity:
    """At most `workers` requests served at once, first come first served, each taking
    `service_s` (or, with `exponential`, a seeded exponential time of that mean: an M/M/c
    queue under Poisson arrivals, whose capacity under a p99 objective Erlang C gives)."""

    def __init__(
        self, workers: int, service_s: float, exponential: bool = False, seed: int = 0
    ) -> None:
        self.slots = _Slots(workers)
        self.service_s = service_s
        self._draw = random.Random(seed) if exponential else None
        self.served = 0
        self.bad_requests: list[str] = []
        self.latencies_us: list[float] = []
        # How long each request really held its slot: from the moment the slot was handed
        # to it (its thread wakes a little later, and the slot is taken meanwhile) to the
        # end of its service, sleep overshoot included.
        self.held_s: list[float] = []
        self._lock = threading.Lock()

    def serve(self) -> None:
        arrived = time.perf_counter()
        began = self.slots.acquire()
        try:
            if self._draw is None:
                time.sleep(self.service_s)
            else:
                with self._lock:
                    service_s = self._draw.expovariate(1 / self.service_s)
                time.sleep(service_s)
            held = time.perf_counter() - began
        finally:
            self.slots.release()
        with self._lock:
            self.served += 1
            self.held_s.append(held)
            self.latencies_us.append((time.perf_counter() - arrived) * 1e6)


# TF Serving's request_latency buckets (util.cc: Buckets::Exponential(10, 1.8, 33)): the
# first 32 bounds, then +Inf.
LATENCY_BOUNDS_US = [10 * 1.8**i for i in range(32)]


def prometheus_page(capacity: Capacity, model: str = "toy") -> str:
    """The stand-in's /monitoring/prometheus/metrics, written as TF Serving's exporter
    writes it (util/prometheus_exporter.cc): TYPE lines, cumulative buckets, _sum, _count."""
    with capacity._lock:
        latencies = list(capacity.latencies_us)
    labels = f'model_name="{model}",API="predict",entrypoint="REST"'
    lines = [
        "# TYPE :tensorflow:serving:request_count counter",
        f':tensorflow:serving:request_count{{model_name="{model}",status="OK"}} {len(latencies)}',
        "# TYPE :tensorflow:serving:request_latency histogram",
    ]
    for bound in [*LATENCY_BOUNDS_US, math.inf]:
        le = "+Inf" if math.isinf(bound) else f"{bound:g}"
        count = sum(1 for value in latencies if value <= bound)
        lines.append(f':tensorflow:serving:request_latency_bucket{{{labels},le="{le}"}} {count}')
    lines += [
        f":tensorflow:serving:request_latency_sum{{{labels}}} {sum(latencies)}",
        f":tensorflow:serving:request_latency_count{{{labels}}} {len(latencies)}",
        "# TYPE :tensorflow:core:graph_runs counter",
        ":tensorflow:core:graph_runs{} 0",
    ]
    return "\n".join(lines) + "\n"


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up at the end of a run are expected, not errors worth a trace."""

    def handle_error(self, request: object, client_address: object) -> None:
        return


def metadata(
    shape: tuple[int, ...] = (-1, 4, 4, 3), dtype: str = "DT_FLOAT", encoding: str = ""
) -> dict[str, object]:
    """The metadata answer of a model whose one input has this shape (-1: the batch), dtype
    and, if given, encoding (coo_sparse or composite_tensor, as TF Serving's JSON shows a
    TensorInfo's oneof instead of its name)."""
    document = json.loads(json.dumps(METADATA))
    spec = document["metadata"]["signature_def"]["signature_def"]["serving_default"]
    tensor = spec["inputs"]["image_input"]
    tensor["tensor_shape"]["dim"] = [{"size": str(d)} for d in shape]
    tensor["dtype"] = dtype
    if encoding:
        del tensor["name"]
        tensor[encoding] = {}
    return dict(document)


@contextmanager
def rest_server(
    capacity: Capacity,
    fail_every: int = 0,
    model_metadata: dict[str, object] = METADATA,
    parse_bodies: bool = True,
) -> Iterator[str]:
    """http://127.0.0.1:<port>; every `fail_every`-th predict answers 503. Without
    `parse_bodies` a predict's body is read but not decoded (a cheap sink for benchmarks
    of the load generator with large bodies)."""
    counter = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms ACK wait

        def _reply(self, status: int, body: dict[str, object]) -> None:
            send_json(self, status, body)

        def do_GET(self) -> None:
            if self.path == "/v1/models/toy/metadata":
                self._reply(200, model_metadata)
            elif self.path == "/monitoring/prometheus/metrics":
                page = prometheus_page(capacity).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            body = json.loads(raw) if parse_bodies else {"inputs": None}
            if self.path != "/v1/models/toy:predict" or "inputs" not in body:
                capacity.bad_requests.append(self.path)
                self._reply(400, {"error": "bad request"})
                return
            counter["n"] += 1
            if fail_every and counter["n"] % fail_every == 0:
                self._reply(503, {"error": "overloaded"})
                return
            capacity.serve()
            self._reply(200, {"outputs": [[0.1, 0.9]]})

        def log_message(self, *args: object) -> None:
            return

    server = _QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def grpc_server(capacity: Capacity) -> Iterator[str]:
    """127.0.0.1:<port> serving PredictionService/Predict."""

    def predict(raw: bytes, context: grpc.ServicerContext) -> bytes:
        request = PredictRequest.FromString(raw)
        if request.model_spec.name != "toy" or "image_input" not in request.inputs:
            capacity.bad_requests.append(request.model_spec.name)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad request")
        capacity.serve()
        response = PredictResponse()
        response.model_spec.name = "toy"
        return bytes(response.SerializeToString())

    service, method = PREDICT_METHOD.strip("/").split("/")
    handler = grpc.method_handlers_generic_handler(
        service,
        {method: grpc.unary_unary_rpc_method_handler(predict)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)
