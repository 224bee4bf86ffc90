"""The pure checks of attached files: names, types by extension and content, sizes."""

from __future__ import annotations

import io
import zipfile

import pytest

from moot.core.filetypes import (
    OLE2,
    FileTypeRefused,
    check_type,
    clean_name,
    content_disposition,
    human_size,
)
from moot.ems.files import FileLimits, FileRefused, check_upload
from moot.infra.settings import DEFAULT_FILE_TYPES, EmsSettings

ALLOWED = frozenset(DEFAULT_FILE_TYPES.split(","))


def zipped(**entries: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name.replace("__", "/"), text)
    return out.getvalue()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("C:\\Users\\ann\\Q3 plan.pptx", "Q3 plan.pptx"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("tab\there\x00.pdf", "tabhere.pdf"),
        ("  spaced.md  ", "spaced.md"),
        ("..", ""),
        ("a" * 300 + ".pdf", "a" * 196 + ".pdf"),
        ("Cafe\u0301.txt", "Caf\u00e9.txt"),  # NFC: one é, as typed on another system
    ],
)
def test_clean_name(raw: str, clean: str) -> None:
    assert clean_name(raw) == clean


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("a.pdf", b"%PDF-1.7\n...", "application/pdf"),
        ("a.PDF", b"junk\n%PDF-1.4", "application/pdf"),  # the header within 1024 bytes
        ("a.ppt", OLE2 + b"\x00" * 8, "application/vnd.ms-powerpoint"),
        ("a.png", b"\x89PNG\r\n\x1a\n....", "image/png"),
        ("a.jpeg", b"\xff\xd8\xff\xe0", "image/jpeg"),
        ("a.gif", b"GIF89a...", "image/gif"),
        ("a.csv", b"a,b\n1,2\n", "text/csv"),
        (
            "a.docx",
            zipped(**{"[Content_Types].xml": "<T/>", "word__document.xml": "<w/>"}),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (
            "a.ods",
            zipped(mimetype="application/vnd.oasis.opendocument.spreadsheet"),
            "application/vnd.oasis.opendocument.spreadsheet",
        ),
    ],
)
def test_accepted_types(name: str, data: bytes, content_type: str) -> None:
    assert check_type(name, data, ALLOWED).content_type == content_type


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("a.docx", zipped(**{"[Content_Types].xml": "<T/>", "xl__book.xml": "<x/>"}), "Word"),
        ("a.xlsx", b"PK\x03\x04 not really a zip", "Excel"),
        ("a.odp", zipped(mimetype="application/vnd.oasis.opendocument.text"), "presentation"),
        ("a.doc", b"%PDF-1.4", "Word"),
        ("a.gif", b"\x89PNG\r\n\x1a\n", "GIF"),
        ("a.svg", b"<svg/>", ".svg files cannot be attached"),
        ("a.exe", b"MZ", ".exe files cannot be attached"),
        (".pdf", b"%PDF-", "files without an extension"),
    ],
)
def test_refused_types(name: str, data: bytes, words: str) -> None:
    with pytest.raises(FileTypeRefused, match=words):
        check_type(name, data, ALLOWED)


def test_svg_when_allowed_is_still_never_shown() -> None:
    kind = check_type("a.svg", b"<svg/>", ALLOWED | {"svg"})
    assert kind.content_type == "image/svg+xml" and not kind.inline


def test_sizes_and_limits() -> None:
    limits = FileLimits(max_bytes=1024 * 1024, max_files=2, allowed=ALLOWED)
    assert check_upload("ok.txt", b"x" * 1024 * 1024, limits).kind.extension == "txt"
    with pytest.raises(FileRefused, match=r"^big.txt is 1.1 MB; a file may be at most 1 MB$"):
        check_upload("big.txt", b"x", limits, size=1024 * 1024 + 1)
    with pytest.raises(FileRefused, match=r"empty\.txt is empty") as empty:
        check_upload("empty.txt", b"", limits)
    assert empty.value.status_code == 422
    assert human_size(512) == "512 bytes"
    assert human_size(25 * 1024 * 1024) == "25 MB"
    assert human_size(1536) == "1.5 KB"


def test_content_disposition_keeps_the_name_and_quotes_nothing_raw() -> None:
    header = content_disposition('Plan "Q3" é.pdf', inline=False)
    assert header == (
        "attachment; filename=\"Plan _Q3_ _.pdf\"; filename*=UTF-8''Plan%20%22Q3%22%20%C3%A9.pdf"
    )
    assert content_disposition("a.png", inline=True).startswith("inline;")


def test_the_allowed_types_setting() -> None:
    settings = EmsSettings(allowed_file_types=" PDF, .md ,pdf")
    assert settings.allowed_file_extensions() == {"pdf", "md"}
    with pytest.raises(ValueError, match="unknown file types exe"):
        EmsSettings(allowed_file_types="pdf,exe")
