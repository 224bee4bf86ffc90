"""The cluster secret: from settings, or generated once into the data directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create_cluster_secret(data_dir: Path) -> tuple[str, Path]:
    path = data_dir / "cluster-secret"
    if path.exists():
        return path.read_text().strip(), path
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret, path
