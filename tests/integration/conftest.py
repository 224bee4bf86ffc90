from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster


@pytest.fixture
def cluster(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """An EMS (on SQLite, then on PostgreSQL) with two room servers."""
    running = Cluster(workdir=tmp_path, database_url=database_url)
    try:
        running.start_ems()
        running.start_room("room1")
        running.start_room("room2")
        yield running
    finally:
        running.stop()
