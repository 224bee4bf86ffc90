"""Prometheus plumbing both sides share: the version, a timer, the scrape.

Counters and histograms are defined once, at import, on no registry: tests run several
EMS and room-server apps in one process, and prometheus-client's default REGISTRY is
global, so registering them there twice would fail ("Duplicated timeseries"). Each app
builds its own `CollectorRegistry` instead (`app_registry`) with the metrics of its side
(`moot.ems.metrics`, `moot.room.metrics`) and a collector that reads its live state at
scrape time, and `exposition` serves it after the default registry (process and Python
metrics).

Labels take only bounded values: states, outcomes, reasons, route templates (never a raw
path or a meeting id), HTTP methods and status codes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE_LATEST  # for the routes
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, Info, generate_latest
from prometheus_client.registry import Collector

from moot import __version__

P = ParamSpec("P")
T = TypeVar("T")

# Store and control-channel round trips: milliseconds when all is well, up to the
# 5 s a room server waits for a journal_ack.
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

INFO = Info("moot", "The Moot version this process runs.", registry=None)
INFO.info({"version": __version__})


def timed(
    histogram: Histogram,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Observe how long each call of a coroutine function takes (prometheus-client's own
    `Histogram.time()` decorator times only the creation of the coroutine)."""

    def decorate(function: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(function)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)

        return wrapper

    return decorate


def app_registry(*collectors: Collector) -> CollectorRegistry:
    """One app's Moot metrics: the version, then `collectors`."""
    registry = CollectorRegistry()
    for collector in (INFO, *collectors):
        registry.register(collector)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The text format of a scrape: process and Python metrics, then the app's own."""
    return generate_latest(REGISTRY) + generate_latest(registry)
