"""The cluster configuration's schema: validation, overrides, the effective merge, masking."""

from __future__ import annotations

import pytest

from moot.core import configuration as cc
from moot.core.configuration import DEFAULTS, KEYS, MASK, ConfigError

TURN = {"url": "turn:turn.example:3478", "username": "moot", "credential": "s3cret-pass"}


def test_defaults_are_valid_and_every_key_has_its_section_and_help() -> None:
    assert cc.validate_cluster({}) == DEFAULTS
    assert DEFAULTS["max_chat_length"] == 2000 and DEFAULTS["recording_allowed"] is True
    sections = {s for s, _ in cc.SECTIONS}
    for key in KEYS.values():
        assert key.section in sections and key.help, key.name
    assert {k.section for k in KEYS.values()} == sections  # no empty section


def test_bad_values_are_refused_with_the_key_and_why() -> None:
    with pytest.raises(ConfigError) as caught:
        cc.validate_cluster(
            {
                "max_chat_length": 0,
                "max_video_kbps": 99999,
                "stun_servers": ["http://not-stun"],
                "default_tools": ["chat", "teleport"],
                "turn_servers": [{"url": "https://x", "username": "u", "credential": "c"}],
                "nonsense": 1,
            }
        )
    errors = caught.value.errors
    assert set(errors) == {
        "max_chat_length",
        "max_video_kbps",
        "stun_servers",
        "default_tools",
        "turn_servers.0.url",
        "nonsense",
    }
    assert "greater than or equal to 1" in errors["max_chat_length"]
    assert "teleport" in errors["default_tools"]
    assert errors["nonsense"] == "unknown key"
    assert "turn:" in errors["turn_servers.0.url"]


def test_values_are_normalised() -> None:
    values = cc.validate_cluster(
        {
            "default_tools": ["polls", "chat", "chat"],
            "stun_servers": [" stun:a.example:3478 ", ""],
            "no_proxy": "a.example, b.example ,",
            "welcome_message": "  Hello  ",
        }
    )
    assert values["default_tools"] == ["chat", "polls"]
    assert values["stun_servers"] == ["stun:a.example:3478"]
    assert values["no_proxy"] == "a.example,b.example"
    assert values["welcome_message"] == "Hello"


def test_an_advertised_address_belongs_to_one_server_not_the_cluster() -> None:
    with pytest.raises(ConfigError) as caught:
        cc.validate_cluster({"advertised_url": "https://room.example"})
    assert "one room server" in caught.value.errors["advertised_url"]
    overrides = cc.validate_overrides({"advertised_url": "https://room1.example/"}, DEFAULTS)
    assert overrides == {"advertised_url": "https://room1.example"}
    with pytest.raises(ConfigError) as bad:
        cc.validate_overrides({"advertised_url": "room1 example"}, DEFAULTS)
    assert "http://" in bad.value.errors["advertised_url"]


def test_overrides_keep_only_their_keys_and_obey_the_bounds() -> None:
    cluster = cc.validate_cluster({"max_chat_length": 500, "welcome_message": "Hi"})
    assert cc.validate_overrides({"max_chat_length": "300"}, cluster) == {"max_chat_length": 300}
    with pytest.raises(ConfigError) as caught:
        cc.validate_overrides({"max_chat_length": 5000, "colour": "red"}, cluster)
    assert set(caught.value.errors) == {"max_chat_length", "colour"}


def test_effective_values_and_which_are_overridden() -> None:
    cluster = cc.validate_cluster({"max_chat_length": 500, "welcome_message": "Hi"})
    result = cc.effective(cluster, {"max_chat_length": 300})
    assert result.values["max_chat_length"] == 300
    assert result.values["welcome_message"] == "Hi"
    assert result.overridden == {"max_chat_length"}
    plain = cc.effective(cluster, {})
    assert plain.values == cluster and plain.overridden == frozenset()
    # A key a later version dropped never reaches a room server; a new one has its default.
    old = {k: v for k, v in cluster.items() if k != "max_audio_kbps"} | {"gone": 1}
    assert "gone" not in cc.effective(old, {"gone": 2}).values
    assert cc.effective(old, {}).values["max_audio_kbps"] == DEFAULTS["max_audio_kbps"]


def test_turn_credentials_are_masked_and_a_mask_keeps_the_stored_one() -> None:
    stored = cc.validate_cluster({"turn_servers": [TURN]})
    shown = cc.masked(stored)
    assert shown["turn_servers"][0]["credential"] == MASK
    assert "s3cret-pass" not in repr(shown)
    assert stored["turn_servers"][0]["credential"] == "s3cret-pass"  # masked() copies
    again = cc.validate_cluster(shown, previous=stored)
    assert again["turn_servers"][0]["credential"] == "s3cret-pass"
    # A mask for a server whose address changed has no stored credential to keep.
    moved = {"turn_servers": [{**shown["turn_servers"][0], "url": "turn:other.example"}]}
    with pytest.raises(ConfigError) as caught:
        cc.validate_cluster(moved, previous=stored)
    assert caught.value.errors == {"turn_servers.0.credential": "give this server's credential"}


def test_a_diff_says_what_changed_and_never_a_credential() -> None:
    before = cc.validate_cluster({"turn_servers": [TURN]})
    after = cc.validate_cluster(
        {"turn_servers": [{**TURN, "credential": "n3w-pass"}], "max_chat_length": 100}
    )
    changes = {c.key: c for c in cc.diff(before, after)}
    assert [c.key for c in cc.diff(before, after)] == ["max_chat_length", "turn_servers"]
    assert (changes["max_chat_length"].before, changes["max_chat_length"].after) == (2000, 100)
    assert "pass" not in repr(changes["turn_servers"])
    # Overrides: a key set or dropped shows None on the side where it was not set.
    override = cc.diff({}, {"max_chat_length": 300})
    assert [(c.key, c.before, c.after) for c in override] == [("max_chat_length", None, 300)]
    assert cc.diff(before, before) == []


def test_ice_servers_for_the_meeting_page() -> None:
    values = cc.validate_cluster({"stun_servers": ["stun:s.example:3478"], "turn_servers": [TURN]})
    assert cc.ice_servers(values) == [
        {"urls": ["stun:s.example:3478"]},
        {"urls": [TURN["url"]], "username": "moot", "credential": "s3cret-pass"},
    ]
    assert cc.ice_servers(DEFAULTS) == []


def test_a_room_server_ignores_keys_it_does_not_know_and_refuses_bad_values() -> None:
    config = cc.for_room({**DEFAULTS, "max_chat_length": 42, "from_the_future": True})
    assert config.max_chat_length == 42
    with pytest.raises(ConfigError):
        cc.for_room({"max_chat_length": -1})


def test_a_rest_turn_server_gives_pages_short_lived_credentials() -> None:
    """coturn's TURN REST scheme: `EXPIRES:USER`, base64 HMAC-SHA1 with the shared secret
    (the expected password computed with `openssl dgst -sha1 -hmac`)."""
    rest = {"url": "turn:turn.example:3478", "username": "moot", "credential": "coturn-secret"}
    values = cc.validate_cluster({"turn_servers": [{**rest, "kind": "rest"}]})
    now = 1_700_000_000
    [server] = cc.ice_servers(values, now)
    assert server["username"] == f"{now + cc.TURN_CREDENTIAL_TTL}:moot" == "1700043200:moot"
    assert server["credential"] == "9E7YejNziszpljMbL7TV5nHVzbI="
    # Later pages get later expiries; the secret itself never reaches a page.
    later = cc.ice_servers(values, now + 60)[0]
    assert later["username"] == "1700043260:moot" and "coturn-secret" not in str(later)
    # A long-term account (the default kind) goes as it is.
    assert cc.ice_servers(cc.validate_cluster({"turn_servers": [rest]}), now)[0] == {
        "urls": [rest["url"]],
        "username": "moot",
        "credential": "coturn-secret",
    }
