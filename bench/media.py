"""Media: one publisher to N subscribers through a room server's Janus, and back after a kill.

Runs as root (a network namespace of its own, moot.harness.netns: WebRTC does not use
loopback). Starts an EMS and two room servers, each with its own Janus, and headless
Chromium with a fake camera and microphone. One page publishes its camera and microphone;
then N subscriber pages (separate browser contexts, default 10) open the meeting one after
another. Measured:

- time to first frame: from a subscriber opening the meeting's link (the EMS's /m/{id},
  redirected to the room server) to its first decoded video frame (in the page, every
  20 ms, from getStats());
- CPU of Janus and of the room server per subscriber: their CPU time over a steady window
  with the N subscribers, minus the same window with the publisher alone, over N;
- back to media after a failover: SIGKILL of the room server (its Janus dies with it) to
  each subscriber's first decoded frame on the new room server (it rejoins, and publisher
  and subscribers negotiate again by themselves).

Goals (issue 17): time to first frame p95 <= 1.5 s; failover back-to-media p99 <= 5 s.

Run: `sudo .venv/bin/python bench/media.py [--subscribers 10] [--window 15] [--check]`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from playwright.sync_api import Browser, Page, sync_playwright

from _common import (
    ADMIN,
    Cluster,
    HarnessError,
    Processes,
    beside_goal,
    code_version,
    cpu_seconds,
    exit_code,
    failed,
    load_average,
    machine,
    parser,
    pct,
)
from moot.harness.netns import can_make_namespaces, network_namespace

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
# Every RTCPeerConnection the page makes, and when each first decoded a video frame
# (Date.now(), the machine's wall clock, which this process reads too).
WATCH = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.__firstFrames = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    const index = window.__pcs.push(pc) - 1;
    const timer = setInterval(async () => {
      if (pc.connectionState === "closed") { clearInterval(timer); return; }
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video" && s.framesDecoded > 0 && timer) {
          window.__firstFrames.push({index, at: Date.now()});
          clearInterval(timer);
        }
      });
    }, 20);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();
"""
TTFF_GOAL = 1.5
FAILOVER_GOAL = 5.0


def first_frame_after(page: Page, since_index: int, timeout: float) -> float | None:
    """Wall-clock time (s) of the first frame decoded by a connection made at or after
    `since_index`; None if none within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames: list[dict[str, Any]] = page.evaluate("window.__firstFrames")
        later = [f["at"] for f in frames if f["index"] >= since_index]
        if later:
            return float(min(later)) / 1000
        page.wait_for_timeout(50)
    return None


def open_page(browser: Browser, url: str) -> tuple[Page, float]:
    context = browser.new_context()
    context.add_init_script(WATCH)
    page = context.new_page()
    opened = time.time()
    page.goto(url)
    return page, opened


def janus_of(room_pid: int) -> psutil.Process:
    [janus] = [p for p in psutil.Process(room_pid).children() if p.name() == "janus"]
    return janus


def cpu_over(pids: list[int], seconds: float) -> list[float]:
    before = [cpu_seconds(pid) for pid in pids]
    time.sleep(seconds)
    return [(cpu_seconds(pid) - b) / seconds for pid, b in zip(pids, before, strict=True)]


def bench(cluster: Cluster, browser: Browser, subscribers: int, window: float) -> bool:
    made = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": "Media bench", "moderator": "Pub", "expected_participants": subscribers + 1},
    ).json()
    meeting_id, key = made["id"], made["moderator_key"]
    publisher, _ = open_page(browser, f"{cluster.ems_url}/m/{meeting_id}?name=Pub&key={key}")
    publisher.get_by_role("button", name="Turn on microphone and camera").click()
    server = cluster.client.get(f"{cluster.ems_url}/api/v1/meetings/{meeting_id}").json()["server"]
    room = cluster.rooms[server]
    janus = janus_of(room.pid)
    # The publisher's stream is up once a first subscriber sees it; that one is not counted.
    warm, opened = open_page(browser, f"{cluster.ems_url}/m/{meeting_id}?name=Warm")
    if first_frame_after(warm, 0, 30) is None:
        raise RuntimeError("the first subscriber received no frame in 30 s")
    warm.context.close()
    time.sleep(2)
    alone = cpu_over([janus.pid, room.pid], window)

    pages: list[Page] = []
    ttff: list[float] = []
    loaded_in: list[float] = []  # of which: from the link to the meeting page loaded
    for index in range(subscribers):
        page, opened = open_page(browser, f"{cluster.ems_url}/m/{meeting_id}?name=Sub{index}")
        pages.append(page)
        at = first_frame_after(page, 0, 30)
        if at is None:
            raise RuntimeError(f"subscriber {index} received no frame in 30 s")
        ttff.append(at - opened)
        ready = page.evaluate(
            "performance.timeOrigin"
            " + performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
        )
        loaded_in.append(float(ready) / 1000 - opened)
    time.sleep(2)
    loaded = cpu_over([janus.pid, room.pid], window)
    per_janus = (loaded[0] - alone[0]) / subscribers * 100
    per_room = (loaded[1] - alone[1]) / subscribers * 100

    made_before = [p.evaluate("window.__pcs.length") for p in pages]
    killed = time.time()
    room.popen.send_signal(signal.SIGKILL)
    back: list[float] = []
    for page, since in zip(pages, made_before, strict=True):
        at = first_frame_after(page, since, 30)
        back.append(at - killed if at is not None else float("inf"))

    print(f"\none publisher (fake camera 640x360, VP8 + Opus) to {subscribers} subscribers")
    print(
        f"  Janus:       {alone[0] * 100:.1f} % of a core with the publisher alone, "
        f"{loaded[0] * 100:.1f} % with {subscribers} subscribers"
    )
    print(f"  room server: {alone[1] * 100:.1f} % alone, {loaded[1] * 100:.1f} % loaded")
    print(f"  CPU per subscriber: Janus {per_janus:.2f} %, room server {per_room:.2f} % of a core")
    ttff_p95 = pct(ttff, 95)
    back_p99 = pct(back, 99)
    print(f"  time to first frame: median {pct(ttff, 50):.2f} s, max {max(ttff):.2f} s")
    print(
        f"    of which the link to the meeting page loaded (EMS redirect, page, modules):"
        f" median {pct(loaded_in, 50):.2f} s, max {max(loaded_in):.2f} s"
    )
    print(f"  back to media after SIGKILL: median {pct(back, 50):.2f} s, max {max(back):.2f} s")
    met_ttff = ttff_p95 <= TTFF_GOAL
    met_back = back_p99 <= FAILOVER_GOAL
    print(
        beside_goal("time to first frame p95", f"{ttff_p95:.2f} s", f"<= {TTFF_GOAL} s", met_ttff)
    )
    print(
        beside_goal(
            "failover back to media p99", f"{back_p99:.2f} s", f"<= {FAILOVER_GOAL} s", met_back
        )
    )
    return met_ttff and met_back


def run(args: argparse.Namespace) -> int:
    why_not = can_make_namespaces()
    if why_not:
        print(f"bench/media.py needs {why_not}", file=sys.stderr)
        return 2
    print(f"machine: {machine()}")
    print(f"code:    {code_version()}")
    print(f"load:    {load_average()} at the start")
    with tempfile.TemporaryDirectory(prefix="moot-bench-") as tmp, network_namespace():
        procs = Processes(Path(tmp))
        try:
            cluster = Cluster(procs.workdir, secret=ADMIN["Authorization"].split()[1], procs=procs)
            cluster.start_ems()
            cluster.start_rooms("room1", "room2", MOOT_JANUS="auto", MOOT_LOG_LEVEL="warning")
            cluster.wait_for(
                lambda: all((s.get("media") or {}).get("available") for s in cluster.servers()),
                "both Janus up",
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=ARGS
                )
                try:
                    met = bench(cluster, browser, args.subscribers, args.window)
                finally:
                    browser.close()
        except (RuntimeError, HarnessError, OSError, httpx.HTTPError) as exc:
            return failed(exc, procs, verbose=args.verbose)
        finally:
            procs.stop_all()
    print(f"\nload:    {load_average()} at the end")
    return exit_code(met, args.check)


def main() -> int:
    made = parser(__doc__, verbose=True)
    made.add_argument("--subscribers", type=int, default=10, help="subscriber pages")
    made.add_argument("--window", type=float, default=15.0, help="seconds of each CPU window")
    return run(made.parse_args())


if __name__ == "__main__":
    sys.exit(main())
