"""Moot's processes on one machine, as the demo, the tests and the benchmarks start them.

- `processes`: a child process (start, stop, its log), a group of them, waiting for a
  positive signal while watching that they stay alive;
- `cluster`: an EMS and its room servers as such processes;
- `ports`: free ports from a block of this process's own, so that harnesses running side
  by side (pytest-xdist workers) never race for one.

No part of the EMS or the room server imports it.
"""

from moot.harness.cluster import Cluster
from moot.harness.processes import HarnessError, Process, Processes, wait_for

__all__ = ["Cluster", "HarnessError", "Process", "Processes", "wait_for"]
