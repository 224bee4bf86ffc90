"""How large a request to the EMS may be (moot.infra.body_limit): small, bar the uploads.

Multipart requests to the routes that take meeting files may carry every file a meeting may
have (FileLimits.request_bytes); every other body (JSON, forms, anything) at most
`max_request_bytes`, whatever its Content-Type says: a multipart body sent to a JSON route
is read into memory whole, so it gets the small cap too.
"""

from __future__ import annotations

import re

from starlette.types import Scope

from moot.core.filetypes import human_size
from moot.infra.body_limit import Cap, CapOf, is_multipart

# The routes whose forms and API take files: the new-meeting and change forms, the API
# (and its route for the meeting page).
UPLOAD_PATHS = re.compile(
    r"^/(meetings/new|meetings/[^/]+/edit|api/v1/meetings/[^/]+/files(/from-meeting)?)$"
)


def request_caps(*, max_request_bytes: int, upload_bytes: int) -> CapOf:
    uploads = Cap(upload_bytes, f"the uploads allowed ({human_size(upload_bytes)})")
    other = Cap(
        max_request_bytes, f"{human_size(max_request_bytes)}, the most a request may carry here"
    )

    def cap(scope: Scope) -> Cap:
        if is_multipart(scope) and UPLOAD_PATHS.match(str(scope.get("path", ""))):
            return uploads
        return other

    return cap
