"""The `nats` transport on the machine's NATS: a link's messages arrive whole and in order
(one larger than NATS's max_payload too), a refusal closes the room server's end, and a
new leader's announcement closes the links of the old one."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from nats.aio.client import Client as NatsClient

from moot.bus import Link, LinkClosed
from moot.bus.nats import NatsListener, connect, dialer
from tests.services import nats_url


async def _exchange(url: str) -> None:
    prefix = f"t{secrets.token_hex(6)}"
    nc = await connect(url, "test-ems")
    heard: asyncio.Queue[str] = asyncio.Queue()

    async def serve(link: Link) -> None:
        try:
            while True:
                text = await link.receive_text()
                await heard.put(text)
                if text == "refuse me":
                    await link.close("go away", refused=True)
                    return
                await link.send_text(f"echo {len(text)}")
        except LinkClosed:
            return

    async def connection() -> NatsClient:
        return nc

    leader = NatsListener(connection, prefix, "node-a")
    await leader.start(serve)
    dial = dialer(url, prefix)
    link = await dial()
    try:
        assert link.peer == "EMS node node-a over NATS"
        big = "x" * (3 * 1024 * 1024 + 17)  # over NATS's 1 MiB max_payload: sent in parts
        for text in ("one", big, "three"):
            await link.send_text(text)
        assert [await asyncio.wait_for(heard.get(), 10) for _ in range(3)] == ["one", big, "three"]
        answers = [await asyncio.wait_for(link.receive_text(), 10) for _ in range(3)]
        assert answers == ["echo 3", f"echo {len(big)}", "echo 5"]

        await link.send_text("refuse me")
        with pytest.raises(LinkClosed, match="go away"):
            await asyncio.wait_for(link.receive_text(), 10)

        # Another node announces itself leader: the room server's link to node-a closes.
        second = await dial()
        await nc.publish(f"moot.{prefix}.leader", b"node-b")
        with pytest.raises(LinkClosed, match="node-b is the leader now"):
            await asyncio.wait_for(second.receive_text(), 10)
    finally:
        await leader.stop()
        await dial.close()
        await nc.close()


def test_a_link_over_nats_carries_messages_whole_and_closes_when_told() -> None:
    asyncio.run(_exchange(nats_url()))
