"""Which files may be attached to a meeting, and how they are served. Pure: no I/O.

A file is accepted by its name's extension AND by its first bytes (or, for the zip-based
office formats, by the names inside the zip): a script renamed to slides.pdf is refused.
The content type stored and served is this table's, never the one the browser sent.

Served files are the stored-XSS risk of a meeting server: whoever may attach a file could
attach HTML or SVG that runs script in the Meeting Center's origin. So nothing is served
inline but the plain pictures (PNG, JPEG, GIF), and every answer also carries
`X-Content-Type-Options: nosniff` and a sandboxing Content-Security-Policy (api/files.py).
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the container of .doc, .xls and .ppt
MAX_NAME = 200
# How much of a text file is checked for NUL bytes (a binary renamed .txt has them early).
TEXT_PROBE = 64 * 1024


class FileTypeRefused(ValueError):
    """The file may not be attached; `str()` says why, in words for the person who sent it."""


def _magic(*prefixes: bytes) -> Callable[[bytes], bool]:
    return lambda data: data.startswith(prefixes)


def _pdf(data: bytes) -> bool:
    return b"%PDF-" in data[:1024]  # the header may follow some garbage (PDF 1.7, 7.5.2)


def _text(data: bytes) -> bool:
    return b"\x00" not in data[:TEXT_PROBE]


def _zip_names(data: bytes) -> list[str] | None:
    if not data.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return None


def _ooxml(folder: str) -> Callable[[bytes], bool]:
    """Office Open XML: a zip with [Content_Types].xml and the part's own folder."""

    def check(data: bytes) -> bool:
        names = _zip_names(data)
        return (
            names is not None
            and "[Content_Types].xml" in names
            and any(n.startswith(folder) for n in names)
        )

    return check


def _odf(mimetype: str) -> Callable[[bytes], bool]:
    """OpenDocument: a zip whose `mimetype` entry names the format."""

    def check(data: bytes) -> bool:
        if not data.startswith(b"PK\x03\x04"):
            return False
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                info = archive.getinfo("mimetype")
                if info.file_size > 200:  # never inflate more than a line
                    return False
                return archive.read(info).strip() == mimetype.encode()
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, RuntimeError):
            return False

    return check


@dataclass(frozen=True, slots=True)
class FileType:
    extension: str
    content_type: str
    description: str
    looks_right: Callable[[bytes], bool]
    inline: bool = False  # shown in the browser rather than downloaded


_OPENXML = "application/vnd.openxmlformats-officedocument"
_ODF = "application/vnd.oasis.opendocument"
KNOWN_TYPES: dict[str, FileType] = {
    t.extension: t
    for t in (
        FileType("pdf", "application/pdf", "a PDF document", _pdf),
        FileType(
            "pptx", f"{_OPENXML}.presentationml.presentation", "a PowerPoint file", _ooxml("ppt/")
        ),
        FileType("ppt", "application/vnd.ms-powerpoint", "a PowerPoint file", _magic(OLE2)),
        FileType(
            "odp",
            f"{_ODF}.presentation",
            "an OpenDocument presentation",
            _odf(f"{_ODF}.presentation"),
        ),
        FileType("docx", f"{_OPENXML}.wordprocessingml.document", "a Word file", _ooxml("word/")),
        FileType("doc", "application/msword", "a Word file", _magic(OLE2)),
        FileType("odt", f"{_ODF}.text", "an OpenDocument text", _odf(f"{_ODF}.text")),
        FileType("xlsx", f"{_OPENXML}.spreadsheetml.sheet", "an Excel file", _ooxml("xl/")),
        FileType("xls", "application/vnd.ms-excel", "an Excel file", _magic(OLE2)),
        FileType(
            "ods", f"{_ODF}.spreadsheet", "an OpenDocument spreadsheet", _odf(f"{_ODF}.spreadsheet")
        ),
        FileType("txt", "text/plain", "a text file", _text),
        FileType("md", "text/markdown", "a text file", _text),
        FileType("csv", "text/csv", "a text file", _text),
        FileType("png", "image/png", "a PNG picture", _magic(b"\x89PNG\r\n\x1a\n"), inline=True),
        FileType("jpg", "image/jpeg", "a JPEG picture", _magic(b"\xff\xd8\xff"), inline=True),
        FileType("jpeg", "image/jpeg", "a JPEG picture", _magic(b"\xff\xd8\xff"), inline=True),
        FileType("gif", "image/gif", "a GIF picture", _magic(b"GIF87a", b"GIF89a"), inline=True),
        # Not allowed by default: an SVG may hold script. Allowed, it is only ever downloaded.
        FileType("svg", "image/svg+xml", "an SVG picture", _text),
    )
}

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def clean_name(raw: str) -> str:
    """The file's own name, without the folders a browser may send, at most MAX_NAME long."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("", name).strip().strip(".")
    if len(name) > MAX_NAME:
        stem, dot, extension = name.rpartition(".")
        keep = MAX_NAME - len(dot + extension)
        name = stem[:keep] + dot + extension if dot and keep > 0 else name[:MAX_NAME]
    return name


def extension_of(name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    return extension.lower() if dot and stem else ""


def check_type(name: str, data: bytes, allowed: frozenset[str]) -> FileType:
    """The type of an attached file, or FileTypeRefused saying what may be attached."""
    extension = extension_of(name)
    kinds = ", ".join(sorted(allowed)) or "none"
    if extension not in allowed:
        shown = f".{extension} files" if extension else "files without an extension"
        raise FileTypeRefused(f"{name}: {shown} cannot be attached; allowed: {kinds}")
    kind = KNOWN_TYPES[extension]
    if not kind.looks_right(data):
        raise FileTypeRefused(f"{name} is not {kind.description}, as its name says")
    return kind


def type_of(extension: str) -> FileType | None:
    return KNOWN_TYPES.get(extension)


def content_disposition(name: str, *, inline: bool) -> str:
    """RFC 6266: an ASCII fallback name and the exact one in UTF-8 (RFC 8187)."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    how = "inline" if inline else "attachment"
    return f"{how}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def human_size(size: int, *, up: bool = False) -> str:
    """26214400 -> '25 MB' (units of 1024, as the limits are set: 25 MiB). `up` rounds up,
    so that a file just over a limit never reads as the limit itself."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    if up:
        value = math.ceil(value * 10) / 10
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text} {unit}"
