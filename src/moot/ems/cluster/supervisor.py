"""The supervisor's tick: ten times a second, the failure detector (and its failover) and
the drain deadlines, as of one moment."""

from __future__ import annotations

import asyncio
import logging
import time

from moot.ems import metrics
from moot.ems.cluster.drain import Drain
from moot.ems.cluster.failover import Failover

log = logging.getLogger("moot.ems.cluster")


class Supervisor:
    def __init__(self, failover: Failover, drain: Drain) -> None:
        self._failover = failover
        self._drain = drain

    def tick(self) -> None:
        """One run: every server judged, every passed drain deadline acted on."""
        now = time.monotonic()
        self._failover.check(now)
        self._drain.check(now)
        metrics.DETECTOR_RUNS.inc()

    async def watch(self, period: float = 0.1) -> None:
        """Tick for as long as the EMS runs."""
        while True:
            await asyncio.sleep(period)
            try:
                self.tick()
            except Exception:  # the detector must outlive any one bad tick
                log.exception("failure detector tick failed")
