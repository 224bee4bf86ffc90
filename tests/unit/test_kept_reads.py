"""KeptReads (moot.infra.kept_reads): one read for every get() in flight, kept for a while,
and a failed read kept by nobody."""

from __future__ import annotations

import asyncio

import pytest

from moot.infra.kept_reads import KeptReads


async def test_fifty_gets_in_flight_share_one_read_then_keep_it() -> None:
    reads = 0
    gate = asyncio.Event()

    async def read(_: None) -> frozenset[str]:
        nonlocal reads
        reads += 1
        await gate.wait()
        return frozenset({"ann"})

    names: KeptReads[None, frozenset[str]] = KeptReads(read, keep_for=60)
    waiting = [asyncio.create_task(names.get(None)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert {frozenset({"ann"})} == set(await asyncio.gather(*waiting))
    assert await names.get(None) == frozenset({"ann"})
    assert reads == 1


async def test_a_failed_read_reaches_every_waiter_and_is_not_kept() -> None:
    answers = iter([RuntimeError("store away"), "ok"])

    async def read(key: str) -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    kept: KeptReads[str, str] = KeptReads(read, keep_for=60)
    results = await asyncio.gather(kept.get("m"), kept.get("m"), return_exceptions=True)
    assert [str(r) for r in results] == ["store away", "store away"]
    assert await kept.get("m") == "ok"  # read again, not the failure


async def test_a_read_older_than_keep_for_is_read_again() -> None:
    reads = 0

    async def read(key: str) -> int:
        nonlocal reads
        reads += 1
        return reads

    kept: KeptReads[str, int] = KeptReads(read, keep_for=0)
    assert [await kept.get("m"), await kept.get("m")] == [1, 2]


@pytest.mark.parametrize("forget_during_read", [True, False])
async def test_forget_makes_the_next_get_read_again(forget_during_read: bool) -> None:
    values = iter(["old", "new"])
    gate = asyncio.Event()

    async def read(key: str) -> str:
        await gate.wait()
        return next(values)

    kept: KeptReads[str, str] = KeptReads(read, keep_for=60)
    first = asyncio.create_task(kept.get("m"))
    await asyncio.sleep(0)
    if forget_during_read:
        kept.forget("m")  # a change stored while the old value was being read
    gate.set()
    assert await first == "old"
    if not forget_during_read:
        kept.forget("m")
    assert await kept.get("m") == "new"


async def test_forget_all_drops_every_key_and_a_read_under_way_is_not_kept() -> None:
    """What a node does when other nodes' changes may have gone unheard."""
    version = {"a": 1, "b": 1}
    gate, started = asyncio.Event(), asyncio.Event()

    async def read(key: str) -> int:
        seen = version[key]
        if key == "b":
            started.set()
            await gate.wait()
        return seen

    kept: KeptReads[str, int] = KeptReads(read, keep_for=60)
    assert await kept.get("a") == 1
    under_way = asyncio.create_task(kept.get("b"))
    await started.wait()
    version.update(a=2, b=2)
    kept.forget_all()
    gate.set()
    assert await under_way == 1  # its waiter gets what it read...
    assert await kept.get("a") == 2
    assert await kept.get("b") == 2  # ...but it was not kept
