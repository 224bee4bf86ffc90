"""Audio/video's pure parts: who may send what, and the Janus configuration Moot writes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from moot.core.media_rights import MediaRights, media_rights, needs_media
from moot.room.media.janus_admin import bytes_last_second
from moot.room.media.janus_config import (
    JanusConfig,
    config_files,
    default_rtp_ports,
    parse_rtp_ports,
)

BOTH = ["chat", "audio_video", "screen_sharing"]


@pytest.mark.parametrize(
    ("meeting_type", "tools", "standing", "camera", "screen", "receive"),
    [
        # Collaboration: everyone sends; moderators and presenters share screens.
        ("collaboration", BOTH, "participant", True, False, True),
        ("collaboration", BOTH, "presenter", True, True, True),
        ("collaboration", BOTH, "moderator", True, True, True),
        # Broadcast: the others are viewers, who only receive.
        ("broadcast", BOTH, "participant", False, False, True),
        ("broadcast", BOTH, "presenter", True, True, True),
        ("broadcast", BOTH, "moderator", True, True, True),
        # A tool the meeting does not have is nobody's.
        ("collaboration", ["chat", "screen_sharing"], "moderator", False, True, True),
        ("collaboration", ["chat", "audio_video"], "moderator", True, False, True),
        ("collaboration", ["chat", "whiteboard"], "moderator", False, False, False),
    ],
)
def test_media_rights(
    meeting_type: str, tools: list[str], standing: str, camera: bool, screen: bool, receive: bool
) -> None:
    assert media_rights(meeting_type, tools, standing) == MediaRights(camera, screen, receive)


def test_a_meeting_needs_media_with_audio_video_or_screen_sharing() -> None:
    assert needs_media(["audio_video"]) and needs_media(["chat", "screen_sharing"])
    assert not needs_media(["chat", "whiteboard", "polls"])


def test_the_janus_configuration_keeps_janus_to_itself() -> None:
    config = JanusConfig(
        ws_port=18188,
        rtp_ports=(47000, 47199),
        api_secret="api-s3cret",
        admin_secret="admin-s3cret",
        admin_key="key-s3cret",
        admin_ws_port=18189,
    )
    files = config_files(config, "/var/lib/moot/janus-room1")
    assert set(files) == {
        "janus.jcfg",
        "janus.transport.websockets.jcfg",
        "janus.plugin.videoroom.jcfg",
    }
    core = files["janus.jcfg"]
    assert 'configs_folder = "/var/lib/moot/janus-room1"' in core
    assert 'rtp_port_range = "47000-47199"' in core
    assert 'api_secret = "api-s3cret"' in core and 'admin_secret = "admin-s3cret"' in core
    # Only the videoroom plugin and the WebSocket transport load.
    assert "libjanus_streaming.so" in core and "libjanus_videoroom.so" not in core
    assert "libjanus_http.so" in core and "libjanus_websockets.so" not in core
    ws = files["janus.transport.websockets.jcfg"]
    assert "ws_port = 18188" in ws and 'ws_ip = "127.0.0.1"' in ws
    # The admin API (the bitrate is read there): on 127.0.0.1 only, with the admin secret.
    assert "admin_ws = true" in ws and "admin_ws_port = 18189" in ws
    assert 'admin_ws_ip = "127.0.0.1"' in ws and "admin_wss = false" in ws
    assert (
        "admin_ws = false"
        in config_files(replace(config, admin_ws_port=0), "/x")["janus.transport.websockets.jcfg"]
    )
    assert 'admin_key = "key-s3cret"' in files["janus.plugin.videoroom.jcfg"]


def test_the_bitrate_of_a_handle_is_what_janus_counted_in_the_last_second() -> None:
    """Janus 1.1's handle_info (as seen from a publisher with a fake camera): per stream,
    bytes received (`in`) and sent (`out`) in the last second; DTLS counts are not media."""
    info = {
        "plugin": "janus.plugin.videoroom",
        "webrtc": {
            "dtls": {"stats": {"in": {"packets": 2, "bytes": 746}}},
            "media": {
                "0": {
                    "type": "audio",
                    "stats": {
                        "in": {"packets": 122, "bytes": 14777, "bytes_lastsec": 6817},
                        "out": {"packets": 0, "bytes": 0, "bytes_lastsec": 0, "nacks": 0},
                    },
                },
                "1": {
                    "type": "video",
                    "stats": {"in": {"bytes": 99999, "bytes_lastsec": 60000}, "out": {}},
                },
            },
        },
    }
    assert bytes_last_second(info) == 66817
    assert bytes_last_second({"plugin": "janus.plugin.videoroom"}) == 0  # no PeerConnection


def test_a_quote_in_a_secret_cannot_break_out_of_its_string() -> None:
    config = JanusConfig(18188, (47000, 47199), 'a"b', "c\\d", "e")
    assert 'api_secret = "a\\"b"' in config_files(config, "/x")["janus.jcfg"]


def test_rtp_port_ranges() -> None:
    assert default_rtp_ports(8081) != default_rtp_ports(8082)
    first, last = default_rtp_ports(65535)
    assert 20000 <= first < last <= 60000 and last - first == 199
    assert parse_rtp_ports(" 20000-20199 ") == (20000, 20199)
    for bad in ("20000", "20199-20000", "80-90", "x-y", "20000-70000"):
        with pytest.raises(ValueError, match="range"):
            parse_rtp_ports(bad)
