"""Prometheus metrics of one server, in a registry of its own (so several apps can live in one process)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Counters, gauges and histograms the server updates; `render` is the `/metrics` body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tuneflow_inference_requests", "HTTP requests answered.", ["path", "status"], registry=r
        )
        self.latency = Histogram(
            "tuneflow_inference_request_seconds",
            "Time to the last byte of a response (a stream's included).",
            ["path"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "tuneflow_inference_time_to_first_token_seconds",
            "From admission to the first text.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter("tuneflow_inference_prompt_tokens", "Prompt tokens admitted.", registry=r)
        self.generated_tokens = Counter("tuneflow_inference_generated_tokens", "Tokens generated.", registry=r)
        self.tokens_per_second = Gauge(
            "tuneflow_inference_tokens_per_second", "Generation throughput of the last busy stretch.", registry=r
        )
        self.queue_depth = Gauge("tuneflow_inference_queue_depth", "Sequences waiting for a batch.", registry=r)
        self.running = Gauge("tuneflow_inference_running_sequences", "Sequences being decoded.", registry=r)
        self.batch_size = Histogram(
            "tuneflow_inference_batch_size", "Sequences per decode step.", buckets=(1, 2, 4, 8, 16, 32, 64), registry=r
        )
        self.cancelled = Counter(
            "tuneflow_inference_cancelled", "Requests dropped unfinished because the client went away.", registry=r
        )
        self.rejected = Counter(
            "tuneflow_inference_rejected", "Requests refused because the queue was full.", registry=r
        )

    def record_throughput(self, *, tokens: int, seconds: float) -> None:
        """Set tokens/s from a stretch of continuous decoding that just ended."""
        if seconds > 0:
            self.tokens_per_second.set(tokens / seconds)

    def render(self) -> bytes:
        """The exposition-format text for `/metrics`."""
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    """Counts requests and times them to their last body byte, which for a stream is its end.

    Plain ASGI rather than `BaseHTTPMiddleware`, which would buffer streams and hide client disconnects.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths  # label only known routes: a scanner's random URLs must not mint time series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in self.paths else "other"
        started, status = time.perf_counter(), 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.metrics.requests.labels(path, str(status)).inc()
                self.metrics.latency.labels(path).observe(time.perf_counter() - started)

        await self.app(scope, receive, timed_send)
