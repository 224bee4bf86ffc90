"""What /readyz says of a node's part in the cluster (ems/readiness.py), and which errors
a background loop takes for the database being away (ems/store/outage.py)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError

from moot.ems.readiness import LEADER_SILENT, nats_bus, public_address
from moot.ems.store.outage import store_away

BUS = "nats://moot:secret@nats.example.com:4222"


def test_a_node_of_several_is_ready_while_it_leads_or_hears_the_leader() -> None:
    leads = nats_bus((True, True, None), BUS)
    follows = nats_bus((True, False, 0.4), BUS)
    assert leads.fine and leads.text.endswith("this node leads the cluster")
    assert follows.fine and "the leader heard 0.4 s ago" in follows.text
    for state in [(False, True, 0.1), (True, False, None), (True, False, LEADER_SILENT + 1)]:
        assert not nats_bus(state, BUS).fine, state


def test_the_bus_address_is_shown_without_its_password() -> None:
    assert public_address(BUS) == "nats://nats.example.com:4222"
    assert "secret" not in nats_bus((False, False, None), BUS).text


def test_a_refused_or_closed_connection_is_the_store_away_a_broken_query_is_not() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
    wrapped = DBAPIError("SELECT 1", {}, refused)
    assert store_away(refused) and store_away(wrapped)

    class ConnectionDoesNotExistError(Exception):  # asyncpg's, by name
        pass

    try:
        try:
            raise ConnectionDoesNotExistError("connection was closed in the middle of operation")
        except ConnectionDoesNotExistError as exc:
            raise RuntimeError("query failed") from exc
    except RuntimeError as chained:
        assert store_away(chained)
    assert not store_away(IntegrityError("INSERT", {}, ValueError("duplicate key")))
    assert not store_away(KeyError("status"))
