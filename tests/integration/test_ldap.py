"""LDAP sign-in against a real OpenLDAP slapd with two partitions (tests/ldap_server.py)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from moot.ems.auth.ldap import (
    DirectoryError,
    DirectoryUser,
    LdapDirectory,
    LdapPartition,
    LdapSettings,
    SignInRefused,
)
from moot.harness.ports import free_port
from tests.ldap_server import Slapd, make_ca, running_slapd


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """One slapd for the module, listening on ldap:// (with StartTLS) and ldaps://."""
    with running_slapd(tmp_path_factory.mktemp("slapd"), tls=True) as server:
        yield server


@pytest.fixture
def directory(slapd: Slapd) -> LdapDirectory:
    return LdapDirectory(slapd.settings())


def refusal(directory: LdapDirectory, username: str, password: str) -> SignInRefused:
    with pytest.raises(SignInRefused) as refused:
        directory.authenticate(username, password)
    return refused.value


def other_ca_file(tmp_path: Path) -> str:
    return make_ca("Some other CA").write(tmp_path / "other-ca.pem")


# --- signing in -----------------------------------------------------------------------------


def test_alice_signs_in_as_an_acme_administrator(directory: LdapDirectory, slapd: Slapd) -> None:
    alice = directory.authenticate("alice", slapd.users["alice"])
    assert alice == DirectoryUser(
        username="alice",
        display_name="Alice Archer",
        email="alice@acme.test",
        dn="uid=alice,ou=people,dc=acme,dc=test",
        partition="acme",
        groups=frozenset({"stadmins", "staff"}),
    )


def test_dave_signs_in_to_globex(directory: LdapDirectory, slapd: Slapd) -> None:
    dave = directory.authenticate("dave", slapd.users["dave"])
    assert (dave.partition, dave.groups) == ("globex", frozenset({"staff"}))


def test_a_non_ascii_password_and_name(directory: LdapDirectory, slapd: Slapd) -> None:
    erin = directory.authenticate("erin", slapd.users["erin"])
    assert erin.display_name == "Erin Éclair"


def test_the_username_is_the_directorys_not_the_typed_one(
    directory: LdapDirectory, slapd: Slapd
) -> None:
    assert directory.authenticate("ALICE", slapd.users["alice"]).username == "alice"


def test_a_wrong_password_is_refused(directory: LdapDirectory, slapd: Slapd) -> None:
    refused = refusal(directory, "alice", slapd.users["bob"])
    assert (refused.reason, refused.directory_fault) == ("wrong password", False)


def test_an_unknown_user_is_refused(directory: LdapDirectory) -> None:
    refused = refusal(directory, "mallory", "whatever")
    assert (refused.reason, refused.directory_fault) == ("no such user", False)


@pytest.mark.parametrize("username", ["", "   "])
def test_an_empty_username_is_refused(directory: LdapDirectory, username: str) -> None:
    assert refusal(directory, username, "whatever").reason == "no such user"


def test_an_empty_password_is_refused_before_the_directory_is_asked(slapd: Slapd) -> None:
    """A bind with a DN and no password is an unauthenticated bind, which may "succeed"."""
    nowhere = LdapDirectory(slapd.settings(url=f"ldap://127.0.0.1:{free_port()}"))
    assert refusal(nowhere, "alice", "").reason == "empty password"


@pytest.mark.parametrize(
    "username",
    ["*", "*)(uid=*", "al*", "*lice", "alice)(|(uid=*", "*)(|(objectClass=*", "alice\x00", "\\2a"],
)
def test_a_filter_injection_finds_nobody(
    directory: LdapDirectory, slapd: Slapd, username: str
) -> None:
    """With alice's password: unescaped, "al*" or "*)(uid=*" would have matched her."""
    assert refusal(directory, username, slapd.users["alice"]).reason == "no such user"


def test_a_user_is_found_only_in_the_partition_asked_for(
    directory: LdapDirectory, slapd: Slapd
) -> None:
    assert directory.authenticate("alice", slapd.users["alice"], partition="acme").partition == (
        "acme"
    )
    with pytest.raises(SignInRefused, match="no such user"):
        directory.authenticate("alice", slapd.users["alice"], partition="globex")
    with pytest.raises(ValueError, match="no LDAP partition named"):
        directory.authenticate("alice", slapd.users["alice"], partition="initech")


def test_a_name_in_two_partitions_is_ambiguous_unless_one_is_named(slapd: Slapd) -> None:
    twice = (*slapd.partitions, LdapPartition("acme-too", "ou=people,dc=acme,dc=test"))
    directory = LdapDirectory(slapd.settings(partitions=twice))
    refused = refusal(directory, "alice", slapd.users["alice"])
    assert refused.reason.startswith("ambiguous user name: 2 entries in acme, acme-too")
    found = directory.authenticate("alice", slapd.users["alice"], partition="acme-too")
    assert found.partition == "acme-too"


def test_groups_come_from_the_users_own_partition_only(slapd: Slapd) -> None:
    """A group filter that would match everywhere still reads groups under alice's base only."""
    directory = LdapDirectory(slapd.settings(group_filter="(objectClass=groupOfNames)"))
    assert directory.authenticate("dave", slapd.users["dave"]).groups == frozenset({"staff"})


def test_groups_from_member_of(slapd: Slapd) -> None:
    nothing = "(&(objectClass=groupOfNames)(member={user_dn})(cn=no-such-group))"
    without = LdapDirectory(slapd.settings(group_filter=nothing))
    assert without.authenticate("alice", slapd.users["alice"]).groups == frozenset()
    with_member_of = LdapDirectory(slapd.settings(group_filter=nothing, use_member_of=True))
    alice = with_member_of.authenticate("alice", slapd.users["alice"])
    assert alice.groups == frozenset({"stadmins", "staff"})


# --- the moderator picker -------------------------------------------------------------------


def test_find_users_stays_in_its_partition(directory: LdapDirectory) -> None:
    assert [u.username for u in directory.find_users("", "acme")] == ["alice", "bob", "carol"]
    assert [u.username for u in directory.find_users("", "globex")] == ["dave", "erin"]
    assert [u.username for u in directory.find_users("e", "globex")] == ["dave", "erin"]
    assert directory.find_users("dave", "acme") == []
    assert [u.username for u in directory.find_users("Çel", "acme")] == ["carol"]
    assert [u.username for u in directory.find_users("bob@acme", "acme")] == ["bob"]
    assert {u.partition for u in directory.find_users("", "acme")} == {"acme"}


def test_find_users_escapes_its_text(directory: LdapDirectory) -> None:
    assert directory.find_users("*", "acme") == []
    assert directory.find_users("*)(uid=*", "acme") == []


def test_find_users_honours_the_limit(directory: LdapDirectory) -> None:
    assert len(directory.find_users("", "acme", limit=2)) == 2
    with pytest.raises(ValueError, match="limit"):
        directory.find_users("", "acme", limit=0)


def test_find_users_in_an_unknown_partition(directory: LdapDirectory) -> None:
    with pytest.raises(ValueError, match="no LDAP partition named"):
        directory.find_users("", "initech")


# --- TLS ------------------------------------------------------------------------------------


def _bind_ssf(slapd: Slapd, dn: str) -> list[int]:
    """The security strength factor slapd logged for each bind as dn (0 = no encryption)."""
    pattern = rf'BIND dn="{re.escape(dn)}" mech=SIMPLE bind_ssf=\d+ ssf=(\d+)'
    return [int(ssf) for ssf in re.findall(pattern, slapd.log())]


def test_start_tls_with_the_ca(slapd: Slapd) -> None:
    directory = LdapDirectory(slapd.settings(start_tls=True, ca_file=slapd.ca_file))
    directory.check()
    before = len(_bind_ssf(slapd, "uid=bob,ou=people,dc=acme,dc=test"))
    assert directory.authenticate("bob", slapd.users["bob"]).partition == "acme"
    ssf = _bind_ssf(slapd, "uid=bob,ou=people,dc=acme,dc=test")[before:]
    assert ssf and all(strength >= 128 for strength in ssf), "bob's password went unencrypted"


def test_ldaps_with_the_ca(slapd: Slapd) -> None:
    assert slapd.ldaps_url is not None
    directory = LdapDirectory(slapd.settings(url=slapd.ldaps_url, ca_file=slapd.ca_file))
    directory.check()
    assert directory.authenticate("dave", slapd.users["dave"]).partition == "globex"
    assert [u.username for u in directory.find_users("", "globex")] == ["dave", "erin"]


@pytest.mark.parametrize("how", ["ldaps", "start_tls"])
def test_a_certificate_from_another_ca_is_refused(slapd: Slapd, tmp_path: Path, how: str) -> None:
    assert slapd.ldaps_url is not None
    ca_file = other_ca_file(tmp_path)
    if how == "ldaps":
        settings = slapd.settings(url=slapd.ldaps_url, ca_file=ca_file)
    else:
        settings = slapd.settings(start_tls=True, ca_file=ca_file)
    directory = LdapDirectory(settings)
    with pytest.raises(DirectoryError, match=r"directory unreachable: .*certificate verify failed"):
        directory.check()
    refused = refusal(directory, "alice", slapd.users["alice"])
    assert refused.directory_fault
    assert refused.reason.startswith("directory unreachable")


def test_without_a_ca_file_the_test_ca_is_not_trusted(slapd: Slapd) -> None:
    """The system's CAs are used then; they do not include this test's CA."""
    assert slapd.ldaps_url is not None
    with pytest.raises(DirectoryError, match="certificate verify failed"):
        LdapDirectory(slapd.settings(url=slapd.ldaps_url)).check()


def test_a_certificate_for_another_name_is_refused(slapd: Slapd) -> None:
    """The certificate names IP 127.0.0.1 only: "localhost" reaches the same slapd, yet fails."""
    assert slapd.ldaps_url is not None
    resolved = {info[4][0] for info in socket.getaddrinfo("localhost", None)}
    assert "127.0.0.1" in resolved, f"localhost resolves to {resolved}"
    url = slapd.ldaps_url.replace("127.0.0.1", "localhost")
    directory = LdapDirectory(slapd.settings(url=url, ca_file=slapd.ca_file))
    with pytest.raises(DirectoryError, match=r"[Hh]ostname mismatch|doesn't match|not valid for"):
        directory.check()


def test_a_missing_ca_file_is_a_directory_error(slapd: Slapd, tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match="cannot be used"):
        LdapDirectory(slapd.settings(start_tls=True, ca_file=str(tmp_path / "missing.pem")))


# --- a directory that is down, slow or misconfigured ----------------------------------------


def test_a_directory_that_is_down_is_unreachable_at_once(slapd: Slapd) -> None:
    directory = LdapDirectory(slapd.settings(url=f"ldap://127.0.0.1:{free_port()}"))
    started = time.monotonic()
    refused = refusal(directory, "alice", slapd.users["alice"])
    assert time.monotonic() - started < 1.0
    assert refused.reason.startswith("directory unreachable: ")
    assert "refused" in refused.reason.lower()
    assert refused.directory_fault


@pytest.mark.parametrize("scheme", ["ldap", "ldaps"])
def test_a_directory_that_never_answers_times_out(slapd: Slapd, scheme: str) -> None:
    """A socket that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"{scheme}://127.0.0.1:{silent.getsockname()[1]}"
        directory = LdapDirectory(slapd.settings(url=url, timeout=1.0))
        started = time.monotonic()
        refused = refusal(directory, "alice", slapd.users["alice"])
        elapsed = time.monotonic() - started
    assert refused.reason.startswith("directory unreachable: ")
    assert "timed out" in refused.reason
    assert 0.9 < elapsed < 3.0


def test_a_directory_that_comes_back_is_used_at_once(tmp_path: Path) -> None:
    """ldap3 skips an address that refused it for 5 s; a new Server per connection does not."""
    port = free_port()
    settings = LdapSettings(
        url=f"ldap://127.0.0.1:{port}",
        bind_dn="cn=reader,dc=moot,dc=test",
        bind_password="reader-pw",
        partitions=(LdapPartition("acme", "dc=acme,dc=test"),),
    )
    directory = LdapDirectory(settings)
    assert refusal(directory, "bob", "x").reason.startswith("directory unreachable")
    with running_slapd(tmp_path, port=port, service_password="reader-pw") as slapd:
        started = time.monotonic()
        assert directory.authenticate("bob", slapd.users["bob"]).username == "bob"
        assert time.monotonic() - started < 1.0


def test_check_passes_on_a_good_configuration(directory: LdapDirectory) -> None:
    directory.check()


def test_check_names_a_refused_service_account(slapd: Slapd) -> None:
    directory = LdapDirectory(slapd.settings(bind_password="not-it"))
    with pytest.raises(
        DirectoryError, match=r"service account cn=reader,dc=moot,dc=test was refused"
    ):
        directory.check()
    refused = refusal(directory, "alice", slapd.users["alice"])
    assert refused.directory_fault and "service account" in refused.reason


def test_check_names_a_missing_search_base(slapd: Slapd) -> None:
    partitions = (*slapd.partitions, LdapPartition("initech", "dc=initech,dc=test"))
    with pytest.raises(DirectoryError, match="dc=initech,dc=test"):
        LdapDirectory(slapd.settings(partitions=partitions)).check()


def test_check_names_a_filter_the_directory_rejects(slapd: Slapd) -> None:
    directory = LdapDirectory(slapd.settings(user_filter="(&(uid={username})(objectClass=*)"))
    with pytest.raises(DirectoryError, match="directory error"):
        directory.check()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"url": "http://127.0.0.1"}, "ldap:// or ldaps://"),
        ({"url": "ldaps://127.0.0.1", "start_tls": True}, "start_tls is for ldap://"),
        ({"ca_file": "/etc/ssl/certs/ca-certificates.crt"}, "uses no TLS"),
        ({"partitions": ()}, "at least one partition"),
        ({"user_filter": "(uid={user})"}, "bad placeholder"),
        ({"user_filter": "(uid=alice)"}, "must contain {username}"),
        ({"bind_dn": ""}, "bind_dn"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_settings_refuse_a_bad_configuration(
    slapd: Slapd, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        slapd.settings(**changes)
