"""Audio, video and screen sharing through each room server's real Janus, in Chromium.

WebRTC needs a network of its own here (docs/architecture.md, "Testing media"): neither
Janus's libnice nor Chromium gathers candidates on loopback, and a test may not send
traffic elsewhere. So the module makes a network namespace with a veth pair, enters it
(this thread only: the processes it starts inherit it) for the module's life, and runs the
EMS, the room servers, their Janus and Chromium all inside it. Needs root (CI is).
"""

from __future__ import annotations

import functools
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from websockets.sync.client import connect

from moot.harness import Cluster
from moot.harness.netns import can_make_namespaces, network_namespace
from tests.conftest import ClusterOptions, module_cluster
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, NewContext
from tests.e2e.test_browser import MODERATOR_KEYS, enter, meeting_detail
from tests.services import missing

pytestmark = [pytest.mark.browser, pytest.mark.processes]

MEDIA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
# Every RTCPeerConnection the page makes, kept where the test can ask for its statistics
# (the page's own are inside its module). Playwright injects it through DevTools, which
# the page's Content-Security-Policy does not bind.
RECORD_PEER_CONNECTIONS = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();
"""
# What each connection made since the `since`th receives: per kind, bytes and frames
# decoded, and the largest frame width (a screen is 1280 wide, the fake camera 640).
INBOUND = """
async (since) => {
  const out = {audio: 0, video: 0, frames: 0, width: 0, connected: 0};
  for (const pc of window.__pcs.slice(since)) {
    if (pc.connectionState === "closed") continue;
    const ice = pc.iceConnectionState;
    if (ice === "connected" || ice === "completed") out.connected++;
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      if (s.kind === "audio") out.audio += s.bytesReceived || 0;
      if (s.kind === "video") {
        out.video += s.bytesReceived || 0;
        out.frames += s.framesDecoded || 0;
        out.width = Math.max(out.width, s.frameWidth || 0);
      }
    });
  }
  return out;
}
"""


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    """A network namespace with a veth pair, this thread inside it (moot.harness.netns)."""
    why_not = can_make_namespaces()
    if why_not:
        missing(f"the media tests need {why_not}")
    with network_namespace() as name:
        yield name


@pytest.fixture(scope="module")
def browser(netns: str) -> Iterator[Browser]:
    """Chromium with a fake camera, microphone and screen, inside the namespace."""
    if not CHROMIUM.exists():
        missing(f"Debian Chromium is not installed at {CHROMIUM}")
    if not Path("/usr/bin/janus").exists():
        missing("Debian's janus is not installed (apt-get install -y janus)")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *MEDIA_ARGS]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def media_cluster(
    netns: str, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Cluster]:
    """room1 and room2 with a Janus each; room3 (location "nomedia") without one installed."""
    options = ClusterOptions(rooms=(), room_env={})
    for running in module_cluster(tmp_path_factory, sqlite_template, options):
        running.start_rooms("room1", "room2", MOOT_JANUS="auto")
        # room3 as a server where Janus is not installed.
        running.start_room(
            "room3", MOOT_LOCATION="nomedia", MOOT_JANUS="auto", MOOT_JANUS_BINARY="no-such-janus"
        )
        running.wait_for(
            functools.partial(_media_up, running, "room1", "room2"),
            "both room servers' Janus to be up",
            timeout=30,
        )
        yield running


def _media_up(cluster: Cluster, *names: str) -> bool:
    return all(_media_of(cluster, name).get("available") for name in names)


def _media_of(cluster: Cluster, name: str) -> dict[str, Any]:
    response = cluster.client.get(f"{cluster.ems_url}/api/v1/servers/{name}", headers=cluster.admin)
    media: dict[str, Any] | None = response.json().get("media")
    return media or {}


def _meeting(cluster: Cluster, name: str, **fields: Any) -> str:
    response = cluster.client.post(
        f"{cluster.ems_url}/api/v1/meetings",
        json={"name": name, "moderator": "Alice", "expected_participants": 3, **fields},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    MODERATOR_KEYS[response.json()["id"]] = response.json()["moderator_key"]
    return str(response.json()["id"])


def _page(new_context: NewContext, cluster: Cluster, meeting_id: str, name: str, **kw: Any) -> Page:
    context = new_context()
    context.add_init_script(RECORD_PEER_CONNECTIONS)
    return enter(context, cluster, meeting_id, name, **kw)


def _wait(page: Page, what: str, check: Any, script: str = INBOUND, arg: Any = 0) -> dict[str, Any]:
    """Poll the page's statistics until `check(stats)` holds (60 s: the machine is loaded)."""
    deadline = time.monotonic() + 60
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stats = page.evaluate(script, arg)
        if check(stats):
            return stats
        page.wait_for_timeout(250)
    raise AssertionError(f"{what}: {stats}")


def _flowing(page: Page, since: int = 0, width: int = 0) -> dict[str, Any]:
    """Audio and video arrive through Janus and frames decode; then more keeps coming."""
    first = _wait(
        page,
        f"{page.url}: no media received",
        lambda s: s["connected"] and s["audio"] > 0 and s["frames"] > 0 and s["width"] >= width,
        arg=since,
    )
    return _wait(
        page,
        "media stopped flowing",
        lambda s: s["audio"] > first["audio"] and s["frames"] > first["frames"],
        arg=since,
    )


def _audio_stops(page: Page) -> None:
    """Until no audio byte arrives for a second (50 packets a second while forwarded)."""
    deadline = time.monotonic() + 60
    before = page.evaluate(INBOUND, 0)["audio"]
    while time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        now = page.evaluate(INBOUND, 0)["audio"]
        if now == before:
            return
        before = now
    raise AssertionError("audio still arrives from a muted person")


def _camera_on(page: Page) -> None:
    page.get_by_role("button", name="Turn on microphone and camera").click()
    expect(page.get_by_role("button", name="Mute microphone")).to_be_visible()


@pytest.mark.screenshots
def test_two_people_see_and_hear_each_other_and_a_shared_screen(
    media_cluster: Cluster, new_context: NewContext, screenshots: Path
) -> None:
    meeting_id = _meeting(media_cluster, "Stand-up")
    alice = _page(new_context, media_cluster, meeting_id, "Alice", as_moderator=True)
    bob = _page(new_context, media_cluster, meeting_id, "Bob")
    _camera_on(alice)
    _camera_on(bob)
    # Both ways, through Janus: each page receives the other's audio and decoded video.
    _flowing(alice)
    _flowing(bob)
    # Its room server measures that media through its Janus's admin API and reports the
    # bitrate (placement weighs it): two people sending audio and video, so well over 0.
    server = meeting_detail(media_cluster, meeting_id)["server"]
    media_cluster.wait_for(
        lambda: _media_of(media_cluster, server).get("bitrate_kbps", 0) > 50,
        "the room server to report the media bitrate",
        timeout=30,
    )
    expect(alice.locator("#media-tiles .tile")).to_have_count(1)
    expect(alice.locator("#media-tiles .tile .name")).to_have_text("Bob")
    # Alice (moderator) mutes Bob: his page turns his microphone off, her tile of him says
    # so, and Janus stops forwarding his audio (a page that ignored the mute would still
    # send: the SFU enforces it).
    alice.get_by_label("Moderator actions for Bob").click()
    alice.get_by_role("button", name="Mute Bob").click()
    expect(bob.get_by_role("button", name="Unmute microphone")).to_be_visible()
    expect(alice.locator("#media-tiles .tile .media-mark")).to_contain_text("🔇")
    _audio_stops(alice)
    bob.locator("#unmute-me").click()
    # The room server lifts the moderator's mute first: until then the page may not unmute.
    expect(bob.locator("#muted-note")).to_be_hidden()
    bob.get_by_role("button", name="Unmute microphone").click()
    expect(alice.locator("#media-tiles .tile .media-mark")).not_to_contain_text("🔇")
    _flowing(alice)
    # Alice (a moderator) shares her screen: it takes Bob's stage, at the screen's size.
    alice.get_by_role("button", name="Share screen").click()
    expect(bob.locator("#media-screen-stage .tile .name")).to_have_text("Alice's screen")
    _wait(bob, "the screen share did not arrive", lambda s: s["width"] >= 1280 and s["frames"] > 0)
    bob.screenshot(path=str(screenshots / "meeting-video.png"))
    # A participant may not share a screen: the control is not offered to Bob.
    expect(bob.get_by_role("button", name="Share screen")).to_be_hidden()
    alice.get_by_role("button", name="Stop sharing").click()
    expect(bob.locator("#media-screen-stage")).to_be_hidden()
    # Made presenter, Bob may share his: the room server tells his page at once.
    grant = alice.get_by_role("button", name="Make Bob presenter")
    if not grant.is_visible():  # the menu may still be open from the mute
        alice.get_by_label("Moderator actions for Bob").click()
    grant.click()
    expect(bob.get_by_role("button", name="Share screen")).to_be_visible()
    # One screen share at a time by default: Bob's is refused while Alice shares hers...
    alice.get_by_role("button", name="Share screen").click()
    expect(bob.locator("#media-screen-stage .tile .name")).to_have_text("Alice's screen")
    bob.get_by_role("button", name="Share screen").click()
    expect(bob.locator("#media-status")).to_contain_text("Alice is sharing a screen: one at a time")
    expect(bob.get_by_role("button", name="Share screen")).to_be_visible()
    # ...until a moderator lets several share at once (a control only moderators have).
    expect(bob.get_by_role("button", name="Allow several screen shares")).to_be_hidden()
    alice.get_by_role("button", name="Allow several screen shares").click()
    expect(alice.get_by_role("button", name="One screen share at a time")).to_be_visible()
    made = alice.evaluate("window.__pcs.length")
    bob.get_by_role("button", name="Share screen").click()
    expect(alice.locator("#media-screen-stage .tile .name")).to_have_text("Bob's screen")
    expect(bob.locator("#media-screen-stage .tile .name")).to_have_text("Alice's screen")
    _wait(alice, "Bob's screen did not arrive", lambda s: s["width"] >= 1280, arg=made)


def test_a_dead_janus_is_restarted_and_pages_publish_again(
    media_cluster: Cluster, new_context: NewContext
) -> None:
    meeting_id = _meeting(media_cluster, "Janus restarts")
    alice = _page(new_context, media_cluster, meeting_id, "Alice", as_moderator=True)
    bob = _page(new_context, media_cluster, meeting_id, "Bob")
    _camera_on(alice)
    _flowing(bob)
    server = meeting_detail(media_cluster, meeting_id)["server"]
    room = psutil.Process(media_cluster.rooms[server].pid)
    [janus] = [p for p in room.children() if p.name() == "janus"]
    made = bob.evaluate("window.__pcs.length")
    janus.send_signal(signal.SIGKILL)
    # The page says so, then the room server starts Janus again and the pages go on.
    expect(bob.locator("#media-status")).to_contain_text("unavailable")
    _flowing(bob, since=made)
    [again] = [p for p in room.children() if p.name() == "janus"]
    assert again.pid != janus.pid
    media_cluster.wait_for(  # the room server's next report says so
        lambda: _media_of(media_cluster, server)["available"], "media available", timeout=10
    )


def _join_token(cluster: Cluster, meeting_id: str, name: str) -> tuple[str, str]:
    """(the room server's WebSocket address, a join token) as the EMS gives a browser."""
    response = httpx.get(
        f"{cluster.ems_url}/m/{meeting_id}", params={"name": name}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    room, _, query = location.partition("?token=")
    return room.replace("http://", "ws://") + "/ws", query


def test_a_broadcast_viewer_watches_and_may_not_publish(
    media_cluster: Cluster, new_context: NewContext
) -> None:
    meeting_id = _meeting(media_cluster, "All hands", type="broadcast")
    alice = _page(new_context, media_cluster, meeting_id, "Alice", as_moderator=True)
    carol = _page(new_context, media_cluster, meeting_id, "Carol")
    _camera_on(alice)
    _flowing(carol)
    # A viewer is offered no camera, and the room server refuses a publish all the same.
    expect(carol.get_by_role("button", name="Turn on microphone and camera")).to_be_hidden()
    address, token = _join_token(media_cluster, meeting_id, "Dave")
    with connect(f"{address}?token={token}&roster=changes", open_timeout=10) as socket:
        offer = {"type": "offer", "sdp": "v=0\r\n"}
        request = {"type": "media", "action": "publish", "kind": "camera", "jsep": offer}
        socket.send(json.dumps(request))
        deadline = time.monotonic() + 20
        while True:
            message = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message["type"] == "media_signal":
                break
        assert message["action"] == "refused", message
        assert "may not send audio or video" in message["message"]


def test_a_room_server_without_janus_says_audio_video_is_unavailable(
    media_cluster: Cluster, new_context: NewContext
) -> None:
    meeting_id = _meeting(media_cluster, "Text only", location="nomedia", location_required=True)
    assert meeting_detail(media_cluster, meeting_id)["server"] == "room3"
    context = new_context()
    page = context.new_page()
    page.goto(f"{media_cluster.ems_url}/m/{meeting_id}?name=Erin")
    expect(page.locator("#connection")).to_have_text("connected")
    expect(page.locator("#media-status")).to_contain_text(
        "Audio and video are unavailable on this room server: Janus (the media server) is "
        "not installed"
    )
    expect(page.get_by_role("button", name="Turn on microphone and camera")).to_be_hidden()
    # The meeting itself works.
    page.get_by_label("Message").fill("still here")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#messages .pending")).to_have_count(0)
    media = _media_of(media_cluster, "room3")
    assert media["available"] is False and "not installed" in media["reason"]


# The browser's answer when a person refuses the camera, or has none: the errors
# getUserMedia rejects with (the fake-device flags would otherwise grant everything).
REFUSE_DEVICES = """(name) => {
  navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("no", name));
}"""


def test_a_refused_or_missing_camera_is_said_and_the_meeting_goes_on(
    media_cluster: Cluster, new_context: NewContext
) -> None:
    meeting_id = _meeting(media_cluster, "No camera")
    alice = _page(new_context, media_cluster, meeting_id, "Alice", as_moderator=True)
    frank = _page(new_context, media_cluster, meeting_id, "Frank")
    _camera_on(alice)
    frank.evaluate(REFUSE_DEVICES, "NotAllowedError")
    frank.get_by_role("button", name="Turn on microphone and camera").click()
    expect(frank.locator("#media-status")).to_contain_text(
        "You did not allow this page to use your camera and microphone"
    )
    frank.evaluate(REFUSE_DEVICES, "NotFoundError")
    frank.get_by_role("button", name="Turn on microphone and camera").click()
    expect(frank.locator("#media-status")).to_contain_text("No camera or microphone was found")
    # Frank still sees and hears Alice, and chats.
    _flowing(frank)
    frank.get_by_label("Message").fill("no camera here")
    frank.get_by_role("button", name="Send", exact=True).click()
    expect(alice.locator("#messages")).to_contain_text("no camera here")


@pytest.mark.screenshots
def test_media_flows_again_after_the_room_server_is_killed(
    media_cluster: Cluster, new_context: NewContext, screenshots: Path
) -> None:
    """Last in the module: it kills a room server. The meeting is recorded: what Janus
    recorded on both room servers plays back as one recording."""
    meeting_id = _meeting(media_cluster, "Resilient media", record=True)
    alice = _page(new_context, media_cluster, meeting_id, "Alice", as_moderator=True)
    bob = _page(new_context, media_cluster, meeting_id, "Bob")
    _camera_on(alice)
    _camera_on(bob)
    alice.get_by_role("button", name="Stop camera").click()  # a state it must keep
    _flowing(bob)
    # A second or more of Bob's video for the first segment of the recording.
    seen = _flowing(alice)
    _wait(alice, "Bob's video stopped", lambda s: s["frames"] > seen["frames"] + 60)
    victim = meeting_detail(media_cluster, meeting_id)["server"]
    made = {p: p.evaluate("window.__pcs.length") for p in (alice, bob)}
    media_cluster.rooms[victim].popen.send_signal(signal.SIGKILL)
    media_cluster.wait_for(
        lambda: meeting_detail(media_cluster, meeting_id)["server"] != victim,
        "the meeting to move",
    )
    # Each page publishes and subscribes again on the new server, by itself.
    _flowing(alice, since=made[alice])
    _flowing(bob, since=made[bob])
    expect(alice.get_by_role("button", name="Start camera")).to_be_visible()
    expect(bob.locator("#media-tiles .tile .media-mark")).to_contain_text("camera off")
    # On the new server, Alice shares her screen: recorded too.
    alice.get_by_role("button", name="Share screen").click()
    shared = _wait(bob, "the screen did not arrive", lambda s: s["width"] >= 1280)
    # A few seconds of it (a screen sends fewer frames than a camera).
    _wait(bob, "the screen stopped", lambda s: s["frames"] > shared["frames"] + 90)
    ended = media_cluster.client.post(
        f"{media_cluster.ems_url}/api/v1/meetings/{meeting_id}/end", headers=media_cluster.admin
    )
    assert ended.status_code == 200, ended.text
    # The killed server, started again, processes what its Janus recorded before the kill
    # and sends it to the EMS: the recording has the media of both segments.
    media_cluster.start_room(victim, MOOT_JANUS="auto")
    media_cluster.wait_for(
        lambda: _recorded_media(media_cluster, meeting_id) is not None,
        "the media of both segments in the recording",
        timeout=60,
    )
    recording = _recorded_media(media_cluster, meeting_id)
    assert recording is not None
    first, second = recording["segments"]
    [screen] = [m for m in second["media"] if m["kind"] == "screen"]
    assert screen["user"] == "Alice" and screen["content_type"] == "video/webm"
    assert screen["offset_seconds"] >= second["offset_seconds"]
    # The files are standard WebM (EBML) and Ogg, served whole or by range (to seek).
    got = media_cluster.client.get(screen["url"], headers={"range": "bytes=0-3"})
    assert got.status_code == 206 and got.content == b"\x1a\x45\xdf\xa3"
    [audio] = [m for m in first["media"] if m["user"] == "Bob" and m["track"] == "audio"]
    assert media_cluster.client.get(audio["url"]).content[:4] == b"OggS"

    # Played back: Bob's video plays in step with the player in the first segment, the
    # screen in the second.
    page = new_context().new_page()
    page.goto(f"{media_cluster.ems_url}/recordings/{meeting_id}")
    expect(page.locator("#player")).to_have_attribute("data-ready", "true")
    bob_video = _video_of(first, "Bob")
    bob_tile = page.locator(f".replay-tile[data-media='{bob_video['id']}']")
    screen_tile = page.locator(f".replay-tile[data-media='{screen['id']}']")
    expect(bob_tile).to_contain_text("Bob")
    expect(screen_tile).to_contain_text("Alice's screen")
    page.get_by_label("Position").fill(str(bob_video["offset_seconds"] + 0.2))
    expect(bob_tile).to_be_visible()
    expect(screen_tile).to_be_hidden()
    page.get_by_role("button", name="Play").click()
    _plays(page, bob_tile)
    page.get_by_label("Position").fill(str(screen["offset_seconds"] + 0.2))
    expect(screen_tile).to_be_visible()
    expect(bob_tile).to_be_hidden()
    _plays(page, screen_tile)
    page.screenshot(path=str(screenshots / "recording-media.png"), full_page=True)


def _recorded_media(cluster: Cluster, meeting_id: str) -> dict[str, Any] | None:
    response = cluster.client.get(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/recording", headers=cluster.admin
    )
    recording: dict[str, Any] = response.json()
    segments = recording.get("segments", [])
    if len(segments) != 2:
        return None
    first = {(m["user"], m["kind"], m["track"]) for m in segments[0]["media"]}
    second = {(m["user"], m["kind"], m["track"]) for m in segments[1]["media"]}
    wanted = {("Bob", "camera", "audio"), ("Bob", "camera", "video"), ("Alice", "camera", "audio")}
    if not (first >= wanted and second >= {*wanted, ("Alice", "screen", "video")}):
        return None  # not all in yet
    return recording


def _video_of(segment: dict[str, Any], user: str) -> dict[str, Any]:
    [video] = [
        m
        for m in segment["media"]
        if (m["user"], m["kind"], m["track"]) == (user, "camera", "video")
    ]
    return video


def _plays(page: Page, tile: Any) -> None:
    """The tile's video has decoded frames, and its time moves on (its size is whatever
    the sender's browser chose to send at the time: it adapts to the load)."""
    video = tile.locator("video")
    page.wait_for_function("v => v.videoWidth > 0", arg=video.element_handle())
    start = video.evaluate("v => v.currentTime")
    page.wait_for_function(
        "([v, t]) => !v.paused && v.currentTime > t + 0.3", arg=[video.element_handle(), start]
    )
