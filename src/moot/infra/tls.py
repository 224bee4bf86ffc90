"""The TLS settings of `moot serve` and `moot room`, turned into SSL contexts at start-up.

Every file is checked here, before anything listens or dials, so that a wrong path stops
the command with a message naming the file and the setting, not a traceback from inside
uvicorn or websockets minutes later.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from moot.infra.certs import CertError, client_ssl_context, server_ssl_context
from moot.infra.settings import EmsSettings, RoomSettings


class TlsSettingError(Exception):
    """A TLS setting cannot be used; the message names the setting and the file."""


def _setting(name: str) -> str:
    return f"{name} (MOOT_{name.upper()})"


def _readable(path: Path, name: str) -> Path:
    if not path.is_file():
        raise TlsSettingError(f"{_setting(name)} names {path}, which is not a file")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise TlsSettingError(f"{_setting(name)}: cannot read {path} ({exc.strerror})") from exc
    return path


def _pair(cert: Path | None, key: Path | None, names: tuple[str, str], what: str) -> bool:
    """Both set (True) or neither (False); one alone is a mistake worth stopping for."""
    if (cert is None) != (key is None):
        given, missing = names if cert is not None else names[::-1]
        raise TlsSettingError(
            f"{_setting(given)} is set but {_setting(missing)} is not: "
            f"set both to {what}, or neither"
        )
    if cert is None or key is None:
        return False
    _readable(cert, names[0])
    _readable(key, names[1])
    return True


def ems_server_context(settings: EmsSettings) -> ssl.SSLContext | None:
    """The EMS's HTTPS context, None for plain HTTP.

    With tls_client_ca, room servers are asked for a client certificate (CERT_OPTIONAL):
    one signed by another CA fails the handshake; none at all is fine (the cluster secret).
    """
    names = ("tls_cert", "tls_key")
    if not _pair(settings.tls_cert, settings.tls_key, names, "serve HTTPS"):
        if settings.tls_client_ca is not None:
            raise TlsSettingError(
                f"{_setting('tls_client_ca')} needs {_setting('tls_cert')} and "
                f"{_setting('tls_key')}: client certificates are checked in the TLS handshake"
            )
        return None
    assert settings.tls_cert is not None and settings.tls_key is not None
    try:
        context = server_ssl_context(settings.tls_cert, settings.tls_key)
    except CertError as exc:
        raise TlsSettingError(f"{_setting('tls_cert')}, {_setting('tls_key')}: {exc}") from exc
    client_ca = settings.tls_client_ca
    if client_ca is None:
        return context
    _readable(client_ca, "tls_client_ca")
    try:  # again, now that any error is the CA's
        return server_ssl_context(settings.tls_cert, settings.tls_key, client_ca=client_ca)
    except CertError as exc:
        raise TlsSettingError(f"{_setting('tls_client_ca')}: {exc}") from exc


def room_server_context(settings: RoomSettings) -> ssl.SSLContext | None:
    """The room server's HTTPS context for browsers, None for plain HTTP."""
    names = ("room_tls_cert", "room_tls_key")
    if not _pair(settings.room_tls_cert, settings.room_tls_key, names, "serve HTTPS"):
        return None
    assert settings.room_tls_cert is not None and settings.room_tls_key is not None
    try:
        return server_ssl_context(settings.room_tls_cert, settings.room_tls_key)
    except CertError as exc:
        raise TlsSettingError(
            f"{_setting('room_tls_cert')}, {_setting('room_tls_key')}: {exc}"
        ) from exc


def room_client_context(settings: RoomSettings) -> ssl.SSLContext | None:
    """The context the room server dials the EMS with; None for ws:// (or wss:// with the
    system's CAs and no client certificate, which is what websockets does by itself)."""
    names = ("room_client_cert", "room_client_key")
    has_cert = _pair(
        settings.room_client_cert,
        settings.room_client_key,
        names,
        "present a client certificate to the EMS",
    )
    secure = settings.ems_url.startswith("https://")
    if not secure and (has_cert or settings.tls_ca is not None):
        # Without TLS neither would be used, and the cluster secret would travel in clear.
        setting = _setting("room_client_cert" if has_cert else "tls_ca")
        raise TlsSettingError(
            f"{setting} is set but ems_url ({settings.ems_url}) is not https://: "
            "the control channel uses TLS only with an https:// ems_url"
        )
    if not secure or (settings.tls_ca is None and not has_cert):
        return None
    ca = _readable(settings.tls_ca, "tls_ca") if settings.tls_ca is not None else None
    try:
        context = client_ssl_context(ca)
    except CertError as exc:
        raise TlsSettingError(f"{_setting('tls_ca')}: {exc}") from exc
    if not has_cert:
        return context
    try:  # again, now that any error is the client certificate's
        return client_ssl_context(ca, cert=settings.room_client_cert, key=settings.room_client_key)
    except CertError as exc:
        raise TlsSettingError(
            f"{_setting('room_client_cert')}, {_setting('room_client_key')}: {exc}"
        ) from exc
