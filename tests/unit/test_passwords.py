"""Local passwords: argon2id with RFC 9106's low-memory profile; bad input never raises."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY

from moot.ems.auth.passwords import (
    hash_password,
    needs_rehash,
    verify_password,
    verify_unknown_user,
)

STORED = hash_password("correct horse battery staple")


def test_a_hash_is_argon2id_with_the_low_memory_profile() -> None:
    p = RFC_9106_LOW_MEMORY
    assert STORED.startswith(f"$argon2id$v=19$m={p.memory_cost},t={p.time_cost},p={p.parallelism}$")
    assert (p.memory_cost, p.time_cost, p.parallelism) == (65536, 3, 4)


def test_the_right_password_verifies_and_others_do_not() -> None:
    assert verify_password(STORED, "correct horse battery staple")
    assert not verify_password(STORED, "correct horse battery stapl")
    assert not verify_password(STORED, "")
    assert not verify_password(STORED, "Correct horse battery staple")


def test_each_hash_has_its_own_salt() -> None:
    again = hash_password("correct horse battery staple")
    assert again != STORED
    assert verify_password(again, "correct horse battery staple")


@pytest.mark.parametrize("password", ["", "é ü ß 漢字 🙂", "x" * 4096, "nul\x00inside"])
def test_any_password_round_trips(password: str) -> None:
    stored = hash_password(password)
    assert verify_password(stored, password)
    assert not verify_password(stored, password + "!")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$argon2id$",
        "$argon2id$v=19$m=65536,t=3,p=4$AAAA$BBBB",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
        pytest.param(STORED[:-4], id="cut-short"),  # ids: the hash's salt differs per run
        pytest.param(STORED.replace("argon2id", "argon2i"), id="argon2i"),
        "é$argon2id$",  # not ASCII
        "\x00",
    ],
)
def test_a_malformed_or_foreign_hash_is_false_not_an_error(stored: str) -> None:
    assert verify_password(stored, "correct horse battery staple") is False
    assert needs_rehash(stored) is True


def test_needs_rehash_only_for_other_parameters() -> None:
    assert needs_rehash(STORED) is False
    weaker = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw")
    assert needs_rehash(weaker) is True
    assert verify_password(weaker, "pw")  # old hashes still verify until rehashed


def test_an_unknown_user_is_refused() -> None:
    assert verify_unknown_user("anything") is False
