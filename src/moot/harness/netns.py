"""A network namespace of its own for WebRTC on one machine (tests, benchmarks).

Neither Janus's libnice nor Chromium gathers ICE candidates on loopback, and a test may
only send traffic to loopback or to hosts it makes. So: a namespace with a veth pair whose
two ends both stay inside it (10.77.0.1 and 10.77.0.2), entered by the calling thread only
(setns), so that every process it starts from then on (EMS, room servers, their Janus,
Playwright's driver and Chromium) runs inside it too. Needs root (CAP_SYS_ADMIN).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
ADDRESSES = ("10.77.0.1/24", "10.77.0.2/24")


def can_make_namespaces() -> str:
    """ "" if this process can make one; otherwise why not."""
    if os.geteuid() != 0:
        return "a network namespace needs root (CI runs as root)"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    return ""


def _setns(fd: int) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns(CLONE_NEWNET) failed")


@contextlib.contextmanager
def network_namespace(prefix: str = "moot-rtc") -> Iterator[str]:
    """Make a namespace with its veth pair, enter it (this thread), yield its name; then
    go back to the namespace this thread was in and delete it."""
    name = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", "netns", "exec", name, "ip", *args], check=True, timeout=10)

    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        ip("link", "set", "lo", "up")
        ip("link", "add", "va", "type", "veth", "peer", "name", "vb")
        for address, device in zip(ADDRESSES, ("va", "vb"), strict=True):
            ip("addr", "add", address, "dev", device)
            ip("link", "set", device, "up")
        inside = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(inside)
        finally:
            os.close(inside)
        try:
            yield name
        finally:
            _setns(original)
    finally:
        os.close(original)
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)
