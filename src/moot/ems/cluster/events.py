"""What the cluster manager announces, and who listens: services subscribe here instead of
overwriting the manager's attributes, and the manager never imports them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from moot.ems.cluster.registry import LiveServer

T = TypeVar("T")


class Signal(Generic[T]):
    """Listeners of one kind of event, told in the order they subscribed."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[T], None]] = []

    def subscribe(self, listener: Callable[[T], None]) -> Callable[[], None]:
        """Listen from now on; returns what stops listening."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, value: T) -> None:
        for listener in list(self._listeners):
            listener(value)


@dataclass
class ClusterEvents:
    """Every event of the cluster manager."""

    # A room server has registered: its configuration and the current messages to all go
    # to it (before the commands that reopen its meetings, so a reopened meeting has them).
    server_registered: Signal[LiveServer] = field(default_factory=Signal)
    # A meeting ended, moved or reopened with a new epoch: caches of it are stale.
    meeting_changed: Signal[str] = field(default_factory=Signal)
    # A moderator locked, unlocked, removed or readmitted in a meeting (its journal has it).
    moderated: Signal[str] = field(default_factory=Signal)
