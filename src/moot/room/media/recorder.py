"""Recording a meeting's audio, video and screen: Janus writes, this turns it into files
a browser plays, and the agent takes them to the EMS.

Janus's videoroom records each publisher's streams as .mjr files (its own format, RTP
packets as they came) in a folder per meeting and epoch, `live/MEETING-EPOCH/`; the hub
names each stream's files after its feed (`FEED-KIND-audio-0.mjr`, ...) and writes a
note beside them saying whose it is. When the stream ends (unpublished, the page left,
the meeting closed or moved here), Debian's `janus-pp-rec` (package janus-tools) turns
each .mjr into a standard file, Opus in Ogg for audio, VP8 in WebM for video, which lands
in `ready/` with a manifest; the agent sends what is ready to the EMS over the control
link and deletes it once the EMS has it (agent.py). A room server that died leaves its
.mjr files behind: started again, it processes them first (`finish_leftovers`), so the
segment it hosted before the failover reaches the recording too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("moot.room.media")

PP_REC = "janus-pp-rec"
# After Janus is told a stream ended, the time it takes to close its files.
CLOSE_GRACE = 1.0
OUTPUTS = {"audio": ("opus", "audio/ogg"), "video": ("webm", "video/webm")}


@dataclass(frozen=True, slots=True)
class ReadyMedia:
    """A processed file's manifest (`ready/NAME.json` beside `ready/NAME`)."""

    name: str
    meeting_id: str
    epoch: int
    user: str
    kind: str  # camera or screen
    track: str  # audio or video
    content_type: str
    started_at: str  # ISO 8601, UTC


def ready_files(ready: Path) -> list[tuple[ReadyMedia, Path]]:
    """What waits to go to the EMS, oldest first."""
    found = []
    for manifest in sorted(ready.glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            media = ReadyMedia(**json.loads(manifest.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            log.warning("ignored a broken recording manifest %s: %s", manifest, exc)
            continue
        data = ready / media.name
        if data.exists():
            found.append((media, data))
    return found


def forget(ready: Path, name: str) -> None:
    """The EMS has it (or refused it for good): the local copy goes."""
    for path in (ready / name, ready / f"{name}.json"):
        path.unlink(missing_ok=True)


class MediaRecorder:
    def __init__(self, base: Path, binary: str = PP_REC) -> None:
        self.live = base / "live"
        self.ready = base / "ready"
        self.binary = binary
        self._tasks: set[asyncio.Task[None]] = set()
        # Streams being processed: one that ends twice (unpublished, then its room closed)
        # is processed once, not twice side by side.
        self._finishing: set[tuple[Path, str]] = set()

    @property
    def can_process(self) -> bool:
        return shutil.which(self.binary) is not None

    def folder(self, meeting_id: str, epoch: int) -> Path:
        """Where Janus records the meeting at this epoch (made here: Janus writes into it)."""
        folder = self.live / f"{meeting_id}-{epoch}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def started(self, folder: Path, stem: str, user: str, kind: str) -> None:
        """A stream is recorded under `stem`: note whose it is, for whoever processes it
        (this process, or the next one after a crash)."""
        note = {"user": user, "kind": kind, "at": datetime.now(UTC).isoformat()}
        (folder / f"{stem}.note").write_text(json.dumps(note))

    def ended(self, folder: Path, stem: str) -> None:
        """The stream ended: its files are processed once Janus has closed them."""
        self._later(self._finish_after_close(folder, [stem]))

    def closed(self, folder: Path) -> None:
        """The meeting's Janus room is gone: every stream in it is processed."""
        stems = [note.stem for note in folder.glob("*.note")]
        if stems:
            self._later(self._finish_after_close(folder, stems))

    def leftovers(self) -> list[tuple[Path, str]]:
        """The streams a room server that died here left (listed before Janus starts, so
        none being recorded now is among them)."""
        if not self.live.exists():
            return []
        return [
            (folder, note.stem)
            for folder in sorted(p for p in self.live.iterdir() if p.is_dir())
            for note in sorted(folder.glob("*.note"))
        ]

    async def finish_all(self, streams: list[tuple[Path, str]]) -> None:
        for folder, stem in streams:
            try:
                await self.finish(folder, stem)
            except Exception:
                log.exception("could not process the recording %s/%s", folder, stem)

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish_after_close(self, folder: Path, stems: list[str]) -> None:
        await asyncio.sleep(CLOSE_GRACE)
        # One bad file must not keep the others from the recording.
        await self.finish_all([(folder, stem) for stem in stems])

    async def finish(self, folder: Path, stem: str) -> None:
        """Turn one stream's .mjr files into playable files in `ready/`, with manifests."""
        if (folder, stem) in self._finishing:
            return
        self._finishing.add((folder, stem))
        try:
            await self._finish(folder, stem)
        finally:
            self._finishing.discard((folder, stem))

    async def _finish(self, folder: Path, stem: str) -> None:
        note = _note(folder / f"{stem}.note")
        if note is None:
            return  # done already (a stream ended twice: unpublished, then the room closed)
        meeting_id, _, epoch = folder.name.rpartition("-")
        for mjr in _recorded(folder, stem, self.ready):
            track = "audio" if "-audio-" in mjr.name else "video"
            ext, content_type = OUTPUTS[track]
            name = f"{folder.name}-{mjr.stem}.{ext}"
            started = await self._first_packet(mjr) or str(note["at"])
            if await self._convert(mjr, self.ready / name):
                media = ReadyMedia(
                    name=name,
                    meeting_id=meeting_id,
                    epoch=int(epoch),
                    user=str(note["user"]),
                    kind=str(note["kind"]),
                    track=track,
                    content_type=content_type,
                    started_at=started,
                )
                _write_manifest(self.ready, media)
        _done(folder, stem)

    async def _run(self, *args: str) -> tuple[int, bytes]:
        process = await asyncio.create_subprocess_exec(
            self.binary,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await process.communicate()
        return process.returncode or 0, out

    async def _first_packet(self, mjr: Path) -> str | None:
        """When Janus wrote the file's first packet (its header says, in µs since 1970)."""
        try:
            code, out = await self._run("--json", str(mjr))
            header = json.loads(out.decode().strip().splitlines()[-1]) if code == 0 else {}
        except (OSError, ValueError, IndexError):
            return None
        micros = header.get("u") or header.get("s")
        if not isinstance(micros, int) or micros <= 0:
            return None
        return datetime.fromtimestamp(micros / 1e6, UTC).isoformat()

    async def _convert(self, mjr: Path, target: Path) -> bool:
        """janus-pp-rec; False for a stream with nothing in it (never flowed, or no
        janus-tools here: said once in the log)."""
        if not self.can_process:
            log.error(
                "cannot process the recording %s: %s is not installed "
                "(apt-get install janus-tools)",
                mjr,
                self.binary,
            )
            return False
        try:
            code, _ = await self._run(str(mjr), str(target))
        except OSError as exc:
            log.warning("could not run %s: %s", self.binary, exc)
            return False
        if code != 0 or not _kept(target):
            log.info("nothing to keep of %s (janus-pp-rec exit %s)", mjr, code)
            return False
        return True


# The file work of `finish`, apart (blocking, but small and local).


def _note(path: Path) -> dict[str, Any] | None:
    try:
        note: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return note


def _recorded(folder: Path, stem: str, ready: Path) -> list[Path]:
    ready.mkdir(parents=True, exist_ok=True)
    return sorted(folder.glob(f"{stem}-*.mjr"))


def _write_manifest(ready: Path, media: ReadyMedia) -> None:
    (ready / f"{media.name}.json").write_text(json.dumps(asdict(media)))


def _kept(target: Path) -> bool:
    """The converted file has something in it (else it goes)."""
    if target.exists() and target.stat().st_size > 0:
        return True
    target.unlink(missing_ok=True)
    return False


def _done(folder: Path, stem: str) -> None:
    """The stream's .mjr files and note go; the folder too once empty."""
    for path in [*folder.glob(f"{stem}-*.mjr"), folder / f"{stem}.note"]:
        path.unlink(missing_ok=True)
    if folder.exists() and not any(folder.iterdir()):
        folder.rmdir()
