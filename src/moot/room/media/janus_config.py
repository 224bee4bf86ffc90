"""The configuration folder Moot writes for the Janus it supervises: pure text, no I/O.

One folder per room server (under its data dir), so several room servers on one machine
each run a Janus of their own: their own WebSocket port on 127.0.0.1, their own RTP port
range, their own secrets. Only what Moot uses is loaded: the WebSocket transport and the
videoroom plugin; every other plugin, transport, logger and event handler is disabled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PLUGINS_FOLDER = "/usr/lib/x86_64-linux-gnu/janus/plugins"
TRANSPORTS_FOLDER = "/usr/lib/x86_64-linux-gnu/janus/transports"
EVENTS_FOLDER = "/usr/lib/x86_64-linux-gnu/janus/events"
LOGGERS_FOLDER = "/usr/lib/x86_64-linux-gnu/janus/loggers"

# Everything Debian's janus ships that Moot does not use (janus.jcfg `disable` lists).
DISABLED_PLUGINS = (
    "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,"
    "libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,"
    "libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so"
)
DISABLED_TRANSPORTS = (
    "libjanus_http.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so"
)
# A room server's RTP ports, by default: a block of this many per room server, chosen from
# its own web port so that two room servers on one machine rarely share one (libnice skips
# a port in use anyway).
RTP_BLOCK = 200
RTP_FIRST = 20000
RTP_BLOCKS = 200  # 20000-59999

_RANGE = re.compile(r"^(\d{1,5})-(\d{1,5})$")


@dataclass(frozen=True, slots=True)
class JanusConfig:
    """What differs between two Janus instances Moot supervises."""

    ws_port: int
    rtp_ports: tuple[int, int]
    api_secret: str  # every request of Moot's carries it: another local process cannot drive Janus
    admin_secret: str  # Janus's admin API: only the room server, on 127.0.0.1, with it
    admin_key: str  # the videoroom's: only Moot creates rooms
    debug_level: int = 3
    # The admin API's WebSocket (127.0.0.1 only), where the room server reads the bitrate
    # of its handles (janus_admin.py); 0: not enabled.
    admin_ws_port: int = 0


def default_rtp_ports(room_port: int) -> tuple[int, int]:
    """A block of RTP ports for the room server listening on `room_port`."""
    first = RTP_FIRST + (room_port % RTP_BLOCKS) * RTP_BLOCK
    return first, first + RTP_BLOCK - 1


def parse_rtp_ports(text: str) -> tuple[int, int]:
    """ "20000-20199" -> (20000, 20199); ValueError with a sentence if it is not a range."""
    match = _RANGE.match(text.strip())
    if match is None:
        raise ValueError(f"an RTP port range is FIRST-LAST, e.g. 20000-20199, not {text!r}")
    first, last = int(match.group(1)), int(match.group(2))
    if not 1024 <= first <= last <= 65535:
        raise ValueError(f"an RTP port range lies within 1024-65535, first <= last: {text!r}")
    return first, last


def _quoted(value: str) -> str:
    """A libconfig string: secrets are made of URL-safe characters, but quote anyway."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def janus_jcfg(config: JanusConfig, folder: str) -> str:
    """janus.jcfg: the core's settings."""
    first, last = config.rtp_ports
    return f"""# Written by Moot (moot room) at every start: changes here are overwritten.
general: {{
    configs_folder = {_quoted(folder)}
    plugins_folder = {_quoted(PLUGINS_FOLDER)}
    transports_folder = {_quoted(TRANSPORTS_FOLDER)}
    events_folder = {_quoted(EVENTS_FOLDER)}
    loggers_folder = {_quoted(LOGGERS_FOLDER)}
    debug_level = {config.debug_level}
    api_secret = {_quoted(config.api_secret)}
    admin_secret = {_quoted(config.admin_secret)}
    session_timeout = 60
    protected_folders = ["/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/sbin", "/sys",
                         "/usr", "/var"]
}}
media: {{
    rtp_port_range = "{first}-{last}"
}}
nat: {{
    nice_debug = false
    ice_ignore_list = "vmnet"
}}
plugins: {{
    disable = {_quoted(DISABLED_PLUGINS)}
}}
transports: {{
    disable = {_quoted(DISABLED_TRANSPORTS)}
}}
loggers: {{
    disable = "libjanus_jsonlog.so"
}}
events: {{
    broadcast = false
}}
"""


def websockets_jcfg(config: JanusConfig) -> str:
    """The WebSocket transport: on 127.0.0.1 only; only the room server talks to it."""
    return f"""# Written by Moot (moot room): only the room server talks to this Janus.
general: {{
    json = "compact"
    ws = true
    ws_port = {config.ws_port}
    ws_ip = "127.0.0.1"
    wss = false
}}
admin: {{
    admin_ws = {"true" if config.admin_ws_port else "false"}
    admin_ws_port = {config.admin_ws_port or 7188}
    admin_ws_ip = "127.0.0.1"
    admin_wss = false
}}
"""


def videoroom_jcfg(config: JanusConfig) -> str:
    """The videoroom plugin: no rooms of its own; Moot creates one per meeting."""
    return f"""# Written by Moot (moot room): rooms are created per meeting, with secrets.
general: {{
    admin_key = {_quoted(config.admin_key)}
    lock_rtp_forward = true
}}
"""


def config_files(config: JanusConfig, folder: str) -> dict[str, str]:
    """Every file of the folder, by name."""
    return {
        "janus.jcfg": janus_jcfg(config, folder),
        "janus.transport.websockets.jcfg": websockets_jcfg(config),
        "janus.plugin.videoroom.jcfg": videoroom_jcfg(config),
    }
