"""What the stage's tools need in tests: a real PDF of several pages, an office file, and
two local web pages (one that lets other sites frame it, one that does not), served on
127.0.0.1 (tests talk to nothing else)."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from moot.harness import Cluster
from moot.harness.ports import free_port


def pdf_of(pages: int) -> bytes:
    """A valid PDF with `pages` pages, each saying "Slide N" in large letters (pdf.js draws
    it; a font every PDF reader has)."""
    objects: list[bytes] = [b"", b""]  # 1: catalog, 2: pages, filled in below
    kids = []
    font = 3
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for n in range(1, pages + 1):
        text = f"BT /F1 96 Tf 120 300 Td (Slide {n}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text))
        content = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 960 540] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (content, font)
        )
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    refs = b" ".join(b"%d 0 R" % k for k in kids)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, pages)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def pptx() -> bytes:
    """Enough of a PowerPoint file to pass the Meeting Center's content check."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("ppt/presentation.xml", "<presentation/>")
    return buffer.getvalue()


PAGES = {
    "/open": ({}, "<h1>Framing is allowed here</h1>"),
    "/closed": (
        {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"},
        "<h1>No frames</h1>",
    ),
}


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/elsewhere":  # a redirect to a scheme a browser should never follow
            self.send_response(302)
            self.send_header("Location", "javascript:alert(1)")
            self.end_headers()
            return
        headers, body = PAGES.get(self.path, ({}, "<h1>Not here</h1>"))
        data = f"<!doctype html><title>{self.path}</title>{body}".encode()
        self.send_response(200 if self.path in PAGES else 404)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def web_pages() -> Iterator[str]:
    """Serve PAGES on 127.0.0.1 (a port of this worker's); the base address."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def attach(cluster: Cluster, meeting_id: str, *files: tuple[str, bytes]) -> list[dict[str, Any]]:
    parts = [("file", (name, data, "application/octet-stream")) for name, data in files]
    answer = httpx.post(
        f"{cluster.ems_url}/api/v1/meetings/{meeting_id}/files",
        files=parts,
        headers=cluster.admin,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items
