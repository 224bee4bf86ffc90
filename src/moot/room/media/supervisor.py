"""Starts this room server's Janus, keeps it running, and connects the media hub to it.

`moot room` writes a configuration folder of its own under its data dir (janus_config),
starts `janus -F FOLDER`, connects to its WebSocket API on 127.0.0.1 and hands the
connection to the hub. If Janus dies, the hub is told (pages say media is unavailable),
and Janus is started again after a short backoff. With `janus_url` (MOOT_JANUS_URL) the
operator runs Janus: the supervisor only connects, and reconnects.

Janus dies with the room server: it is started with PR_SET_PDEATHSIG, so a SIGKILLed room
server leaves no Janus behind holding its ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import secrets
import shutil
import signal
import socket
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

from moot.room.media.hub import MediaHub
from moot.room.media.janus_admin import measure
from moot.room.media.janus_client import JanusClient, JanusError
from moot.room.media.janus_config import JanusConfig, config_files

log = logging.getLogger("moot.room.media")

START_TIMEOUT = 15.0  # seconds Janus may take to open its WebSocket
RESTART_FIRST = 0.5  # seconds before the first restart; doubles up to RESTART_MOST
RESTART_MOST = 10.0
NOT_INSTALLED = (
    "Janus (the media server) is not installed on this room server: "
    "an administrator installs it with `apt-get install janus`"
)


@dataclass(frozen=True, slots=True)
class JanusSettings:
    """What `moot room` was told about its Janus (infra/settings.py: janus_*)."""

    mode: str  # "auto": start our own; "url": the operator's at `url`; "off": no media
    folder: Path  # where the configuration folder goes (auto)
    binary: str = "janus"
    rtp_ports: tuple[int, int] = (20000, 20199)
    url: str = ""
    api_secret: str = ""
    admin_key: str = ""


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGTERM when the room server dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def _ended(work: Awaitable[object]) -> object:
    return await work


def free_local_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class JanusSupervisor:
    def __init__(self, settings: JanusSettings, hub: MediaHub) -> None:
        self.settings = settings
        self.hub = hub
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        # Our Janus's admin API (auto): where its bitrate is read; "" when not ours.
        self.admin_url, self.admin_secret = "", ""

    async def run(self) -> None:
        """Until cancelled: keep Janus up and the hub connected to it."""
        mode = self.settings.mode
        if mode == "off":
            self.hub.turned_off("audio and video are turned off on this room server")
            return
        if mode == "auto" and shutil.which(self.settings.binary) is None:
            log.warning(NOT_INSTALLED)
            self.hub.unavailable(NOT_INSTALLED)
            return
        delay = RESTART_FIRST
        try:
            while True:
                started = asyncio.get_running_loop().time()
                try:
                    await self._once()
                except (OSError, JanusError) as exc:
                    log.warning("Janus: %s", exc)
                except Exception:  # a bug of ours must not end the supervision for good
                    log.exception("the Janus supervisor failed: restarting Janus")
                    await self.stop()
                self.hub.unavailable("the media server restarts")
                if asyncio.get_running_loop().time() - started > 30:
                    delay = RESTART_FIRST  # it ran a while: not a crash loop
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_MOST)
                self.restarts += 1
        finally:
            await self.stop()

    async def _once(self) -> None:
        """Start Janus (auto), connect, and return when it or the connection is gone."""
        if self.settings.mode == "auto":
            url, api_secret, admin_key = await self._start()
        else:
            url, api_secret, admin_key = (
                self.settings.url,
                self.settings.api_secret,
                self.settings.admin_key,
            )
        client = await self._connect(url, api_secret)
        self.hub.connected(client, admin_key)
        waits: list[asyncio.Task[object]] = [asyncio.create_task(_ended(client.closed.wait()))]
        if self.process is not None:
            waits.append(asyncio.create_task(_ended(self.process.wait())))
        measuring = await self._measure(client)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            if measuring is not None:
                measuring.cancel()
            # Pages hear it now, not after Janus has been stopped (a hung one takes seconds).
            self.hub.unavailable("the media server stopped: it is being restarted")
            await client.close()
        if self.process is not None and self.process.returncode is not None:
            log.error("Janus exited (code %s): restarting it", self.process.returncode)
        await self.stop()

    async def _measure(self, session: JanusClient) -> asyncio.Task[None] | None:
        """Measuring the bitrate through our Janus's admin API (the task); None, bitrate
        reported as 0, for an operator's Janus or if the admin API does not answer."""
        if not self.admin_url:
            return None
        admin = JanusClient(self.admin_url, self.admin_secret, admin=True)
        try:
            await admin.open()
        except (OSError, JanusError, TimeoutError) as exc:
            log.warning("Janus's admin API: %s: media bitrate not measured", exc)
            await admin.close()
            return None

        async def measuring() -> None:
            try:
                await measure(admin, session, self.hub)
            finally:
                await admin.close()

        return asyncio.create_task(measuring())

    async def _start(self) -> tuple[str, str, str]:
        folder = self.settings.folder
        folder.mkdir(parents=True, exist_ok=True)
        config = JanusConfig(
            ws_port=free_local_port(),
            rtp_ports=self.settings.rtp_ports,
            api_secret=secrets.token_urlsafe(24),
            admin_secret=secrets.token_urlsafe(24),
            admin_key=secrets.token_urlsafe(24),
            admin_ws_port=free_local_port(),
        )
        self.admin_url = f"ws://127.0.0.1:{config.admin_ws_port}"
        self.admin_secret = config.admin_secret
        for name, text in config_files(config, str(folder)).items():
            path = folder / name
            path.write_text(text)
            path.chmod(0o600)  # the secrets are in it
        log_file = folder / "janus.log"
        self.process = await asyncio.create_subprocess_exec(
            self.settings.binary,
            "-F",
            str(folder),
            "-L",
            str(log_file),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        log.info(
            "started Janus (pid %d) on 127.0.0.1:%d, RTP ports %d-%d, log %s",
            self.process.pid,
            config.ws_port,
            *config.rtp_ports,
            log_file,
        )
        return f"ws://127.0.0.1:{config.ws_port}", config.api_secret, config.admin_key

    async def _connect(self, url: str, api_secret: str) -> JanusClient:
        """Connect, retrying while Janus starts (its WebSocket opens after its plugins load)."""
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while True:
            client = JanusClient(url, api_secret)
            try:
                await client.open()
                return client
            except (OSError, JanusError, TimeoutError) as exc:
                await client.close()
                if self.process is not None and self.process.returncode is not None:
                    raise JanusError(
                        f"Janus exited at start (code {self.process.returncode})"
                    ) from exc
                if asyncio.get_running_loop().time() > deadline:
                    raise JanusError(f"could not connect to Janus at {url}: {exc}") from exc
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """Stop our Janus (if we started one)."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
