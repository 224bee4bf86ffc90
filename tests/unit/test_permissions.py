"""Permissions: every subject kind x action x meeting kind, under the seed's policy and a locked
one, as a grid; single settings and reasons as rows; the rules' promises as properties."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moot.core.permissions import (
    ANONYMOUS,
    MEETING_ACTIONS,
    Action,
    Decision,
    Policy,
    Subject,
    Target,
    decide,
    is_admin,
)

SUBJECTS = {
    "anon": ANONYMOUS,
    "admin": Subject("alice", frozenset({"StAdmins"}), "acme"),  # the group in another case
    "mod": Subject("bob", frozenset({"staff"}), "acme"),  # moderates the acme meetings
    "carol": Subject("carol", frozenset({"staff"}), "acme"),  # named in by_name, in staff
    "frank": Subject("frank", frozenset(), "acme"),  # in acme, in no group, named nowhere
    "gbob": Subject("bob", frozenset({"staff"}), "globex"),  # another partition's bob
    "lbob": Subject("Bob", frozenset(), None),  # a local (partition-less) bob
    "lou": Subject("lou", frozenset(), None),  # a local user
    # Holders of moderator keys (the link given to a meeting's creator), by meeting id:
    "key": Subject(None, moderator_of=frozenset({"public", "mine"})),  # anonymous
    "gkey": Subject("dave", frozenset(), "globex", moderator_of=frozenset({"public"})),
}

TARGETS: dict[str, Target | None] = {
    "mine": Target("Bob", "acme", id="mine"),
    "unlisted": Target("bob", "acme", unlisted=True, id="unlisted"),
    "by_name": Target("bob", "acme", restricted_to=frozenset({"CAROL"}), id="by_name"),
    "by_group": Target("bob", "acme", restricted_to=frozenset({"Staff"}), id="by_group"),
    "public": Target("bob", None, id="public"),
    "public_lou": Target("bob", None, restricted_to=frozenset({"lou"}), id="public_lou"),
    "none": None,
}

SEED = Policy()
LOCKED = Policy(
    anonymous_browse=False,
    anonymous_create=False,
    anonymous_attend=False,
    anonymous_modify_others=False,
    anonymous_delete_others=False,
)

# Columns: browse create attend modify change_access delete end moderate administer
# view_recording.
# Y allowed, N refused, - no such question (an action on a meeting, with no meeting).
COLUMNS = [
    Action.BROWSE,
    Action.CREATE,
    Action.ATTEND,
    Action.MODIFY,
    Action.CHANGE_ACCESS,
    Action.DELETE,
    Action.END,
    Action.MODERATE,
    Action.ADMINISTER,
    Action.VIEW_RECORDING,
]

GRID = {
    "seed": """
        anon   mine       NNNNNNNNNN
        anon   unlisted   NNNNNNNNNN
        anon   by_name    NNNNNNNNNN
        anon   by_group   NNNNNNNNNN
        anon   public     YYYYNNNNNY
        anon   public_lou NYNNNNNNNN
        anon   none       YY------N-
        admin  mine       YYYYYYYYYY
        admin  unlisted   YYYYYYYYYY
        admin  by_name    YYYYYYYYYY
        admin  by_group   YYYYYYYYYY
        admin  public     YYYYYYYYYY
        admin  public_lou YYYYYYYYYY
        admin  none       YY------Y-
        mod    mine       YYYYYYYYNY
        mod    unlisted   YYYYYYYYNY
        mod    by_name    YYYYYYYYNY
        mod    by_group   YYYYYYYYNY
        mod    public     YYYYNNNNNY
        mod    public_lou NYNNNNNNNN
        mod    none       YY------N-
        carol  mine       YYYYNNNNNY
        carol  unlisted   NYYNNNNNNY
        carol  by_name    YYYYNNNNNY
        carol  by_group   YYYYNNNNNY
        carol  public     YYYYNNNNNY
        carol  public_lou NYNNNNNNNN
        carol  none       YY------N-
        frank  mine       YYYYNNNNNY
        frank  unlisted   NYYNNNNNNY
        frank  by_name    NYNNNNNNNN
        frank  by_group   NYNNNNNNNN
        frank  public     YYYYNNNNNY
        frank  public_lou NYNNNNNNNN
        frank  none       YY------N-
        gbob   mine       NNNNNNNNNN
        gbob   unlisted   NNNNNNNNNN
        gbob   by_name    NNNNNNNNNN
        gbob   by_group   NNNNNNNNNN
        gbob   public     YYYYNNNNNY
        gbob   public_lou NYNNNNNNNN
        gbob   none       YY------N-
        lbob   mine       NNNNNNNNNN
        lbob   unlisted   NNNNNNNNNN
        lbob   by_name    NNNNNNNNNN
        lbob   by_group   NNNNNNNNNN
        lbob   public     YYYYYYYYNY
        lbob   public_lou YYYYYYYYNY
        lbob   none       YY------N-
        lou    mine       NNNNNNNNNN
        lou    unlisted   NNNNNNNNNN
        lou    by_name    NNNNNNNNNN
        lou    by_group   NNNNNNNNNN
        lou    public     YYYYNNNNNY
        lou    public_lou YYYYNNNNNY
        lou    none       YY------N-
        key    mine       NNNNNNNNNN
        key    unlisted   NNNNNNNNNN
        key    by_name    NNNNNNNNNN
        key    by_group   NNNNNNNNNN
        key    public     YYYYYYYYNY
        key    public_lou NYNNNNNNNN
        key    none       YY------N-
        gkey   mine       NNNNNNNNNN
        gkey   unlisted   NNNNNNNNNN
        gkey   by_name    NNNNNNNNNN
        gkey   by_group   NNNNNNNNNN
        gkey   public     YYYYYYYYNY
        gkey   public_lou NYNNNNNNNN
        gkey   none       YY------N-
    """,
    "locked": """
        anon   mine       NNNNNNNNNN
        anon   unlisted   NNNNNNNNNN
        anon   by_name    NNNNNNNNNN
        anon   by_group   NNNNNNNNNN
        anon   public     NNNNNNNNNN
        anon   public_lou NNNNNNNNNN
        anon   none       NN------N-
        admin  mine       YYYYYYYYYY
        admin  unlisted   YYYYYYYYYY
        admin  by_name    YYYYYYYYYY
        admin  by_group   YYYYYYYYYY
        admin  public     YYYYYYYYYY
        admin  public_lou YYYYYYYYYY
        admin  none       YY------Y-
        mod    mine       YYYYYYYYNY
        mod    unlisted   YYYYYYYYNY
        mod    by_name    YYYYYYYYNY
        mod    by_group   YYYYYYYYNY
        mod    public     NNNNNNNNNN
        mod    public_lou NNNNNNNNNN
        mod    none       YY------N-
        carol  mine       YYYNNNNNNY
        carol  unlisted   NYYNNNNNNY
        carol  by_name    YYYNNNNNNY
        carol  by_group   YYYNNNNNNY
        carol  public     NNNNNNNNNN
        carol  public_lou NNNNNNNNNN
        carol  none       YY------N-
        frank  mine       YYYNNNNNNY
        frank  unlisted   NYYNNNNNNY
        frank  by_name    NYNNNNNNNN
        frank  by_group   NYNNNNNNNN
        frank  public     NNNNNNNNNN
        frank  public_lou NNNNNNNNNN
        frank  none       YY------N-
        gbob   mine       NNNNNNNNNN
        gbob   unlisted   NNNNNNNNNN
        gbob   by_name    NNNNNNNNNN
        gbob   by_group   NNNNNNNNNN
        gbob   public     NNNNNNNNNN
        gbob   public_lou NNNNNNNNNN
        gbob   none       YY------N-
        lbob   mine       NNNNNNNNNN
        lbob   unlisted   NNNNNNNNNN
        lbob   by_name    NNNNNNNNNN
        lbob   by_group   NNNNNNNNNN
        lbob   public     YYYYYYYYNY
        lbob   public_lou YYYYYYYYNY
        lbob   none       YY------N-
        lou    mine       NNNNNNNNNN
        lou    unlisted   NNNNNNNNNN
        lou    by_name    NNNNNNNNNN
        lou    by_group   NNNNNNNNNN
        lou    public     YYYNNNNNNY
        lou    public_lou YYYNNNNNNY
        lou    none       YY------N-
        key    mine       NNNNNNNNNN
        key    unlisted   NNNNNNNNNN
        key    by_name    NNNNNNNNNN
        key    by_group   NNNNNNNNNN
        key    public     YYYYYYYYNY
        key    public_lou NNNNNNNNNN
        key    none       NN------N-
        gkey   mine       NNNNNNNNNN
        gkey   unlisted   NNNNNNNNNN
        gkey   by_name    NNNNNNNNNN
        gkey   by_group   NNNNNNNNNN
        gkey   public     YYYYYYYYNY
        gkey   public_lou NNNNNNNNNN
        gkey   none       YY------N-
    """,
}
POLICIES = {"seed": SEED, "locked": LOCKED}


def _cells() -> list[Any]:
    cells = []
    for policy_name, grid in GRID.items():
        for line in grid.strip().splitlines():
            subject, target, marks = line.split()
            assert len(marks) == len(COLUMNS), line
            for action, mark in zip(COLUMNS, marks, strict=True):
                cells.append(
                    pytest.param(
                        policy_name,
                        subject,
                        action,
                        target,
                        mark,
                        id=f"{policy_name}-{subject}-{action}-{target}",
                    )
                )
    return cells


def test_the_grid_covers_every_subject_target_and_policy() -> None:
    for policy_name, grid in GRID.items():
        rows = [tuple(line.split()[:2]) for line in grid.strip().splitlines()]
        assert sorted(rows) == sorted((s, t) for s in SUBJECTS for t in TARGETS), policy_name


@pytest.mark.parametrize(("policy_name", "subject", "action", "target", "mark"), _cells())
def test_grid(policy_name: str, subject: str, action: Action, target: str, mark: str) -> None:
    args = (SUBJECTS[subject], action, TARGETS[target], POLICIES[policy_name])
    if mark == "-":
        with pytest.raises(ValueError, match="needs a target"):
            decide(*args)
        return
    decision = decide(*args)
    assert decision.allowed is (mark == "Y"), decision
    assert decision.reason


# Single settings, and the reason a refused person reads.
ROWS = [
    ("anon", Action.CREATE, "none", {"anonymous_create": False}, "sign in to create meetings"),
    ("anon", Action.CREATE, "public", {"anonymous_create": False}, "sign in to create meetings"),
    ("anon", Action.BROWSE, "none", {"anonymous_browse": False}, "sign in to see meetings"),
    ("anon", Action.BROWSE, "public", {"anonymous_browse": False}, "sign in to see meetings"),
    ("anon", Action.ATTEND, "public", {"anonymous_attend": False}, "sign in to attend meetings"),
    ("anon", Action.VIEW_RECORDING, "public", {"anonymous_attend": False}, "sign in to view"),
    ("anon", Action.ATTEND, "public", {"anonymous_browse": False}, None),  # link holders
    ("anon", Action.CREATE, "none", {"anonymous_browse": False}, None),
    ("anon", Action.MODIFY, "public", {"anonymous_modify_others": False}, "only the moderator"),
    ("anon", Action.MODIFY, "public", {"anonymous_delete_others": False}, None),
    ("anon", Action.DELETE, "public", {"anonymous_delete_others": False}, "may delete"),
    ("anon", Action.DELETE, "public", {}, "only the moderator may delete"),  # the default
    ("anon", Action.DELETE, "public", {"anonymous_delete_others": True}, None),
    ("anon", Action.CHANGE_ACCESS, "public", {}, "moderator, password or restriction"),
    ("carol", Action.CHANGE_ACCESS, "mine", {}, "only the moderator may change this meeting's"),
    ("anon", Action.MODIFY, "public", {"anonymous_browse": False}, "sign in to see"),
    ("anon", Action.ATTEND, "public_lou", {}, "restricted to named people: sign in"),
    ("anon", Action.ADMINISTER, "none", {}, "only members of stadmins may administer"),
    ("carol", Action.MODIFY, "mine", {"anonymous_modify_others": False}, "may change this"),
    (
        "carol",
        Action.DELETE,
        "mine",
        {"anonymous_modify_others": False, "anonymous_delete_others": True},
        None,
    ),
    ("carol", Action.DELETE, "mine", {"anonymous_delete_others": False}, "may delete this"),
    ("carol", Action.BROWSE, "mine", {"anonymous_browse": False}, None),
    ("carol", Action.ATTEND, "mine", {"anonymous_attend": False}, None),
    ("carol", Action.CREATE, "none", {"anonymous_create": False}, None),
    ("carol", Action.END, "mine", {}, "only the moderator may end this meeting"),
    ("carol", Action.MODERATE, "mine", {}, "only the moderator may control this meeting"),
    ("carol", Action.BROWSE, "unlisted", {}, "this meeting is unlisted"),
    ("carol", Action.MODIFY, "unlisted", {}, "this meeting is unlisted"),
    ("frank", Action.ATTEND, "by_name", {}, "this meeting is restricted to named people"),
    ("frank", Action.VIEW_RECORDING, "by_group", {}, "restricted to named people"),
    ("frank", Action.ADMINISTER, "none", {}, "only members of stadmins may administer"),
    ("gbob", Action.ATTEND, "mine", {}, "this meeting belongs to another partition"),
    ("gbob", Action.END, "mine", {}, "this meeting belongs to another partition"),
    ("gbob", Action.CREATE, "mine", {}, "this meeting belongs to another partition"),
    ("lou", Action.BROWSE, "mine", {}, "this meeting belongs to another partition"),
    ("mod", Action.END, "public", {}, "outside your partition; only the moderator may end"),
    ("mod", Action.ATTEND, "public", {"anonymous_attend": False}, "outside your partition"),
    ("mod", Action.ADMINISTER, "none", {"admin_group": "staff"}, None),
    ("admin", Action.ADMINISTER, "none", {"admin_group": "mootadmins"}, "members of mootadmins"),
]


@pytest.mark.parametrize(("subject", "action", "target", "changes", "refusal"), ROWS)
def test_rows(
    subject: str, action: Action, target: str, changes: dict[str, Any], refusal: str | None
) -> None:
    decision = decide(SUBJECTS[subject], action, TARGETS[target], replace(SEED, **changes))
    if refusal is None:
        assert decision.allowed, decision
    else:
        assert not decision.allowed
        assert refusal in decision.reason


def test_allowed_decisions_say_why() -> None:
    assert decide(SUBJECTS["admin"], Action.END, TARGETS["mine"], SEED) == Decision(
        True, "administrator"
    )
    assert decide(SUBJECTS["mod"], Action.END, TARGETS["mine"], SEED) == Decision(True, "moderator")


def test_an_anonymous_subject_has_no_groups_partition_or_empty_name() -> None:
    with pytest.raises(ValueError):
        Subject(None, frozenset({"stadmins"}))
    with pytest.raises(ValueError):
        Subject(None, partition="acme")
    with pytest.raises(ValueError):
        Subject("")
    assert Subject.anonymous() == ANONYMOUS and ANONYMOUS.is_anonymous
    assert Subject(None, moderator_of=frozenset({"m1"})).is_anonymous  # a key is no name


def test_every_action_is_in_the_grid() -> None:
    assert set(COLUMNS) == set(Action)


# --- properties -----------------------------------------------------------------------------

NAMES = ["alice", "Alice", "bob", "carol", "staff"]
GROUPS = ["stadmins", "STADMINS", "staff", "sales", "carol"]
PARTITIONS = [None, "acme", "globex"]


@st.composite
def subjects(draw: st.DrawFn) -> Subject:
    name = draw(st.sampled_from([None, *NAMES]))
    if name is None:
        return ANONYMOUS
    return Subject(
        name,
        draw(st.frozensets(st.sampled_from(GROUPS), max_size=3)),
        draw(st.sampled_from(PARTITIONS)),
    )


def signed_in() -> st.SearchStrategy[Subject]:
    return subjects().filter(lambda subject: not subject.is_anonymous)


meetings = st.builds(
    Target,
    moderator=st.sampled_from(NAMES),
    partition=st.sampled_from(PARTITIONS),
    restricted_to=st.frozensets(st.sampled_from(NAMES + GROUPS), max_size=3),
    unlisted=st.booleans(),
)
policies = st.builds(
    Policy,
    anonymous_browse=st.booleans(),
    anonymous_create=st.booleans(),
    anonymous_attend=st.booleans(),
    anonymous_modify_others=st.booleans(),
    anonymous_delete_others=st.booleans(),
    admin_group=st.sampled_from(["stadmins", "Staff"]),
)
actions = st.sampled_from(list(Action))


@st.composite
def questions(draw: st.DrawFn) -> tuple[Action, Target | None]:
    """An action and a target it can be asked about (a meeting action needs a meeting)."""
    action = draw(actions)
    if action in MEETING_ACTIONS:
        return action, draw(meetings)
    return action, draw(st.none() | meetings)


@st.composite
def admins(draw: st.DrawFn, policy: Policy) -> Subject:
    group = draw(st.sampled_from([policy.admin_group.upper(), policy.admin_group.lower()]))
    others = draw(st.frozensets(st.sampled_from(GROUPS), max_size=2))
    return Subject(
        draw(st.sampled_from(NAMES)), others | {group}, draw(st.sampled_from(PARTITIONS))
    )


@given(policies.flatmap(lambda p: st.tuples(admins(p), st.just(p))), questions())
def test_an_admin_is_never_refused(
    admin: tuple[Subject, Policy], question: tuple[Action, Target | None]
) -> None:
    subject, policy = admin
    assert decide(subject, *question, policy) == Decision(True, "administrator")


@given(subjects(), st.none() | meetings, policies)
def test_nobody_but_an_admin_administers(s: Subject, t: Target | None, p: Policy) -> None:
    assert decide(s, Action.ADMINISTER, t, p).allowed == is_admin(s, p)


@given(subjects(), questions(), policies)
def test_a_refusal_has_a_reason(
    s: Subject, question: tuple[Action, Target | None], p: Policy
) -> None:
    decision = decide(s, *question, p)
    assert decision.allowed or decision.reason.strip()


@given(subjects(), actions, meetings, policies)
def test_another_partitions_meeting_is_never_allowed_to_a_non_admin(
    s: Subject, a: Action, t: Target, p: Policy
) -> None:
    elsewhere = replace(t, partition="globex" if s.partition == "acme" else "acme")
    decision = decide(s, a, elsewhere, p)
    assert decision.allowed == is_admin(s, p)
    if not decision.allowed and a is not Action.ADMINISTER:
        assert decision.reason == "this meeting belongs to another partition"


@given(signed_in(), questions(), policies)
def test_signing_in_never_takes_a_right_away(
    s: Subject, question: tuple[Action, Target | None], p: Policy
) -> None:
    if decide(ANONYMOUS, *question, p).allowed:
        assert decide(s, *question, p).allowed


@given(subjects(), questions(), policies, st.data())
def test_opening_a_setting_never_takes_a_right_away(
    s: Subject, question: tuple[Action, Target | None], p: Policy, data: st.DataObject
) -> None:
    flags = [f.name for f in fields(Policy) if f.name.startswith("anonymous_")]
    flag = data.draw(st.sampled_from(flags))
    opening: dict[str, Any] = {flag: True}
    opened = replace(p, **opening)
    if decide(s, *question, p).allowed:
        assert decide(s, *question, opened).allowed


@given(signed_in(), questions(), policies)
def test_names_and_groups_compare_without_case(
    s: Subject, question: tuple[Action, Target | None], p: Policy
) -> None:
    shouted = replace(s, name=(s.name or "").upper(), groups=frozenset(g.upper() for g in s.groups))
    assert decide(s, *question, p).allowed == decide(shouted, *question, p).allowed


@given(subjects(), actions, meetings, policies, st.sampled_from(["m1", "m2"]))
def test_a_moderator_key_moderates_its_own_meeting_only(
    s: Subject, a: Action, t: Target, p: Policy, held: str
) -> None:
    holder = replace(s, moderator_of=frozenset({held}))
    own, other = replace(t, id=held), replace(t, id="m3")
    if own.partition in (None, s.partition):
        assert decide(holder, Action.MODERATE, own, p).allowed
    assert decide(holder, a, other, p) == decide(s, a, other, p)
