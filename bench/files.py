"""Files: how much one upload of 3 x 25 MiB grows the EMS process's memory.

Starts one EMS (`python -m moot serve`, SQLite in a temporary directory unless
--database-url names another database), makes a meeting, attaches one small file (so the
code on the path is loaded and warm), then, five times, attaches three PDF files of
25 MiB each (the default `max_file_bytes`) in one request to a new meeting and reads
from /proc:

- the EMS's resident memory just before the request (VmRSS), after resetting its peak
  (`echo 5 > /proc/PID/clear_refs`);
- its peak resident memory while the request was handled (VmHWM).

The growth is peak minus before: what one such request costs the EMS at most. The files
are sent from disk, so the client's memory is no part of it.

Run: `.venv/bin/python bench/files.py [--database-url URL] [--runs 5] [--files 3] [--check]`.
Give `--src DIR` to run the EMS from another source tree (a checkout before a change).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from moot.harness import Cluster

MIB = 1024 * 1024
FILE_BYTES = 25 * MIB
FILES = 3
# Goal: memory for one file at a time, never for all of them. One file costs up to about
# three copies of itself (the EMS's, the driver's, the database library's record), so the
# goal is four files' worth, whatever the number of files in the request.
GOAL_MIB = 4 * FILE_BYTES / MIB


def proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def make_pdf(path: Path) -> None:
    with path.open("wb") as out:
        out.write(b"%PDF-1.7\n")
        block = bytes(range(256)) * 4096  # 1 MiB
        left = FILE_BYTES - 9 - 6
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= min(left, len(block))
        out.write(b"%%EOF\n")
    assert path.stat().st_size == FILE_BYTES


def measure(cluster: Cluster, pdf: Path, src: str | None, files: int) -> float:
    """Start the EMS, warm it with one small file, then the peak RSS growth (MiB) of one
    upload of `files` files."""
    env = {"PYTHONPATH": src} if src else {}
    soon = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    try:
        pid = cluster.start_ems(**env).popen.pid
        with httpx.Client(base_url=cluster.ems_url, headers=cluster.admin, timeout=120) as c:

            def new_meeting() -> str:
                made = c.post("/api/v1/meetings", json={"name": "Bench files", "start": soon})
                made.raise_for_status()
                return str(made.json()["id"])

            warm = c.post(
                f"/api/v1/meetings/{new_meeting()}/files",
                files=[("file", ("warm.txt", b"warm", "text/plain"))],
            )
            warm.raise_for_status()
            meeting_id = new_meeting()
            handles = [pdf.open("rb") for _ in range(files)]
            try:
                parts = [
                    ("file", (f"slides{i}.pdf", h, "application/pdf"))
                    for i, h in enumerate(handles)
                ]
                reset_peak(pid)
                before = proc_kib(pid, "VmRSS")
                answer = c.post(f"/api/v1/meetings/{meeting_id}/files", files=parts)
                peak = proc_kib(pid, "VmHWM")
            finally:
                for h in handles:
                    h.close()
            if answer.status_code != 201:
                raise SystemExit(f"upload refused: {answer.status_code} {answer.text[:300]}")
            return (peak - before) / 1024
    finally:
        cluster.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=FILES, help="files in the request")
    parser.add_argument("--src", help="run the EMS from this source tree (its moot/ package)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the goal is missed")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = args.database_url or f"sqlite+aiosqlite:///{work / 'moot.db'}"
        pdf = work / "slides.pdf"
        make_pdf(pdf)
        growth = []
        for run in range(args.runs):  # a fresh EMS each run: no memory freed by an earlier one
            run_url = url if args.database_url else f"sqlite+aiosqlite:///{work / f'moot{run}.db'}"
            cluster = Cluster(workdir=work, database_url=run_url)
            growth.append(measure(cluster, pdf, args.src, args.files))

    backend = url.split(":", 1)[0]
    source = f", EMS from {args.src}" if args.src else ""
    print(
        f"{args.files} x {FILE_BYTES // MIB} MiB in one upload, {backend}{source}, {args.runs} runs"
    )
    print(
        f"  EMS peak RSS growth: median {statistics.median(growth):.0f} MiB, "
        f"max {max(growth):.0f} MiB   Goal <= {GOAL_MIB:.0f} MiB"
    )
    met = max(growth) <= GOAL_MIB
    print("  goal MET" if met else "  goal MISSED")
    return 0 if met or not args.check else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
