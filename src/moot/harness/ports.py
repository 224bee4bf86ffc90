"""Free TCP ports for the servers a test starts, from a block of the test worker's own.

With pytest-xdist, workers start servers side by side. A port the OS hands out for port 0
is free when asked, but another worker may be handed the same one before the server that
asked binds it. So each worker takes ports from a block of its own (`gw0` from 12000, `gw1`
from 14000, ...; a run without workers from 10000), below the OS's ephemeral range
(32768 and up on Linux), which clients' and port-0 sockets come from; a port in use, or
just released, is skipped. Each process starts at a random place in its block, so two runs
on one machine rarely try the same ports either.
"""

from __future__ import annotations

import os
import random
import re
import socket

BLOCK = 2000
FIRST = 10_000
LAST = 32_767  # the ephemeral range starts above


def _block() -> range:
    worker = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    index = 0 if worker is None else 1 + int(worker.group(1))
    start = FIRST + index * BLOCK
    if start + BLOCK - 1 > LAST:  # more workers than blocks: share the last ones
        start = FIRST + (index % ((LAST - FIRST + 1) // BLOCK)) * BLOCK
    return range(start, start + BLOCK)


_ports = _block()
_next = random.randrange(len(_ports))


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """The next free port of this worker's block."""
    global _next
    for _ in range(len(_ports)):
        port = _ports[_next % len(_ports)]
        _next += 1
        if is_free(port, host):
            return port
    raise RuntimeError(f"no free port in {_ports.start}-{_ports.stop - 1}")


def free_block(count: int, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive free ports of this worker's block (moot demo takes
    its port and the next ones); none of them is handed out again soon."""
    global _next
    for _ in range(len(_ports)):
        offset = _next % len(_ports)
        if offset + count > len(_ports):
            _next += len(_ports) - offset  # wrap around: a block never straddles the end
            continue
        first = _ports[offset]
        _next += count
        if all(is_free(first + i, host) for i in range(count)):
            return first
    raise RuntimeError(f"no {count} free ports in a row in {_ports.start}-{_ports.stop - 1}")
