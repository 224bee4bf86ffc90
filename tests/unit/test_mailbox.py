"""The mailbox between the room server's two event loops: every call runs, in order."""

from __future__ import annotations

import asyncio
import threading

import pytest

from moot.room.mailbox import Mailbox


def test_calls_posted_from_another_thread_all_run_in_order_on_the_mailbox_loop() -> None:
    async def main() -> list[tuple[int, bool]]:
        loop = asyncio.get_running_loop()
        box = Mailbox(loop)
        seen: list[tuple[int, bool]] = []
        done = asyncio.Event()
        total = 20_000

        def record(n: int) -> None:
            seen.append((n, threading.get_ident() == main_thread))
            if n == total - 1:
                done.set()

        def post_all() -> None:
            for n in range(total):
                box.post(record, n)

        poster = threading.Thread(target=post_all)
        poster.start()
        await asyncio.wait_for(done.wait(), 30)
        poster.join()
        return seen

    main_thread = threading.get_ident()
    seen = asyncio.run(main())
    assert [n for n, _ in seen] == list(range(20_000))
    assert all(on_loop_thread for _, on_loop_thread in seen)


def test_posting_to_a_closed_loop_says_so() -> None:
    loop = asyncio.new_event_loop()
    box = Mailbox(loop)
    loop.close()
    with pytest.raises(RuntimeError):
        box.post(print, "never")
