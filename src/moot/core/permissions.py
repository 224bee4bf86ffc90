"""Who may do what: one pure function, `decide(subject, action, target, policy)`.

No I/O, so every page, API route and room server asks the same question the same way, and the
whole of it is tested as a table. The rules, in the order `decide` applies them (the first
that decides wins):

1. Administrators, members of `policy.admin_group` (compared case-insensitively), may do
   everything, in every partition. An anonymous subject is never one.
2. `administer` (servers, configuration, reports): nobody else.
3. With no target, `create` and `browse` (may the subject see the lists and search at all?):
   signed-in users always; anonymous users if `anonymous_create`, `anonymous_browse`.
4. Partitions. A meeting in a partition is refused to everyone outside it. A meeting without
   a partition is public: there a subject from a partition counts as an anonymous visitor, so
   signing in never takes away a right an anonymous visitor has, and nobody moderates another
   partition's meeting through a name that happens to match. Anonymous subjects have no
   partition: they reach only meetings without one. (For `create`, a target is the meeting
   about to be made.)
5. The moderator may do every action on their meeting. Who the moderator is comes from who
   the subject is, never from a name someone typed: a signed-in subject whose name equals
   the meeting's moderator (case-insensitively; names are unique within a partition), or a
   subject holding the meeting's moderator key (the link its creator was given), signed in
   or not (`moderator_of`: the meetings whose key the caller checked).
6. Everyone else, by action:
   - create: as with no target (in the subject's partition, or in none as a visitor).
   - browse: anonymous users need `anonymous_browse`; an unlisted meeting is seen only by its
     moderator; a restricted meeting only by those who may attend it (its name and topic are
     theirs). A link holder's way into an unlisted meeting is `attend`, not `browse`.
   - attend, view_recording: anonymous users need `anonymous_attend`; a restricted meeting
     admits only the users and groups it names (case-insensitively); never anonymous ones.
   - modify, delete: allowed if the subject may browse the meeting and the policy lets
     anonymous users do it (`anonymous_modify_others`, `anonymous_delete_others`). These
     settings also bind signed-in non-moderators: an anonymous visitor can be anyone,
     signed in or not, so a signed-in user never has fewer rights than one, and switching the
     setting off leaves changing meetings to their moderators and the administrators.
   - change_access (who moderates it, its password, who may attend it), end, moderate:
     nobody but the moderator, whatever the policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    BROWSE = "browse"  # see lists, search and a meeting's details
    CREATE = "create"
    ATTEND = "attend"
    MODIFY = "modify"  # change a meeting
    CHANGE_ACCESS = "change_access"  # change its moderator, password or restriction
    DELETE = "delete"
    END = "end"
    MODERATE = "moderate"  # control a running meeting
    ADMINISTER = "administer"  # servers, configuration, reports
    VIEW_RECORDING = "view_recording"


# Actions that need a meeting to act on (browse without one asks about the lists).
MEETING_ACTIONS = frozenset(
    {
        Action.ATTEND,
        Action.MODIFY,
        Action.CHANGE_ACCESS,
        Action.DELETE,
        Action.END,
        Action.MODERATE,
        Action.VIEW_RECORDING,
    }
)


@dataclass(frozen=True)
class Policy:
    """What anonymous users may do; the defaults are the 2002 seed's (browse, create, attend,
    change others' meetings), bar deleting others' meetings: least privilege for what cannot
    be undone."""

    anonymous_browse: bool = True
    anonymous_create: bool = True
    anonymous_attend: bool = True
    anonymous_modify_others: bool = True
    anonymous_delete_others: bool = False
    admin_group: str = "stadmins"


@dataclass(frozen=True)
class Subject:
    """Who asks: a signed-in user (name, groups, partition) or an anonymous visitor; either
    may hold moderator keys (`moderator_of`: ids of the meetings whose key was checked).

    The name must come from sign-in, never from what a visitor typed: it makes its bearer the
    moderator of meetings with that moderator.
    """

    name: str | None
    groups: frozenset[str] = frozenset()
    partition: str | None = None
    moderator_of: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.name == "":
            raise ValueError("an anonymous subject has name None, not ''")
        if self.name is None and (self.groups or self.partition is not None):
            raise ValueError("an anonymous subject has no groups and no partition")

    @classmethod
    def anonymous(cls) -> Subject:
        return cls(name=None)

    @property
    def is_anonymous(self) -> bool:
        return self.name is None


@dataclass(frozen=True)
class Target:
    """The meeting acted on. `restricted_to` names users or groups; empty means everyone.
    `id` matches the subject's moderator keys (empty: a meeting not yet made)."""

    moderator: str
    partition: str | None = None
    restricted_to: frozenset[str] = frozenset()
    unlisted: bool = False
    id: str = ""


class Refusal(StrEnum):
    """Why `decide` refused, for code to act on; `Decision.reason` is for people."""

    SIGN_IN = "sign_in"  # anonymous, and the policy wants a sign-in
    RESTRICTED = "restricted"  # restricted to named people, and not one of them
    UNLISTED = "unlisted"
    NOT_ADMINISTRATOR = "not_administrator"
    OTHER_PARTITION = "other_partition"  # its existence is none of their business
    OUTSIDE_PARTITION = "outside_partition"  # a public meeting, beyond what visitors may do
    NOT_MODERATOR = "not_moderator"


@dataclass(frozen=True)
class Decision:
    """Allowed or not, with a reason a person can read (shown to them when refused) and,
    when refused, the `Refusal` code decides on."""

    allowed: bool
    reason: str
    refusal: Refusal | None = None


ANONYMOUS = Subject.anonymous()


def _allow(reason: str) -> Decision:
    return Decision(True, reason)


def _refuse(refusal: Refusal, reason: str) -> Decision:
    return Decision(False, reason, refusal)


def is_admin(subject: Subject, policy: Policy) -> bool:
    if subject.name is None:
        return False
    wanted = policy.admin_group.casefold()
    return any(group.casefold() == wanted for group in subject.groups)


def _is_moderator(subject: Subject, target: Target) -> bool:
    if target.id and target.id in subject.moderator_of:
        return True  # holds the meeting's moderator key
    return subject.name is not None and subject.name.casefold() == target.moderator.casefold()


def _on_list(subject: Subject, target: Target) -> bool:
    if subject.name is None:
        return False
    listed = {entry.casefold() for entry in target.restricted_to}
    return subject.name.casefold() in listed or any(g.casefold() in listed for g in subject.groups)


def _attend(subject: Subject, target: Target, policy: Policy, anonymous_reason: str) -> Decision:
    if subject.is_anonymous and not policy.anonymous_attend:
        return _refuse(Refusal.SIGN_IN, anonymous_reason)
    if target.restricted_to and not _on_list(subject, target):
        if subject.is_anonymous:
            return _refuse(
                Refusal.RESTRICTED,
                "this meeting is restricted to named people: sign in to attend it",
            )
        return _refuse(Refusal.RESTRICTED, "this meeting is restricted to named people")
    return _allow("allowed")


def _browse(subject: Subject, target: Target, policy: Policy) -> Decision:
    if subject.is_anonymous and not policy.anonymous_browse:
        return _refuse(Refusal.SIGN_IN, "sign in to see meetings")
    if target.unlisted:
        return _refuse(Refusal.UNLISTED, "this meeting is unlisted")
    if target.restricted_to:
        return _attend(subject, target, policy, "sign in to see meetings")
    return _allow("allowed")


_CHANGE_REASONS = {
    Action.MODIFY: "only the moderator may change this meeting",
    Action.CHANGE_ACCESS: (
        "only the moderator may change this meeting's moderator, password or restriction"
    ),
    Action.DELETE: "only the moderator may delete this meeting",
    Action.END: "only the moderator may end this meeting",
    Action.MODERATE: "only the moderator may control this meeting",
}


def decide(subject: Subject, action: Action, target: Target | None, policy: Policy) -> Decision:
    """Whether subject may do action on target under policy, and why (the module's rules).

    ValueError for a question that has no answer: an action on a meeting with no meeting.
    """
    if target is None and action in MEETING_ACTIONS:
        raise ValueError(f"{action} needs a target meeting")
    if is_admin(subject, policy):
        return _allow("administrator")
    if action is Action.ADMINISTER:
        return _refuse(
            Refusal.NOT_ADMINISTRATOR, f"only members of {policy.admin_group} may administer"
        )
    if target is None:  # create, or browse the lists
        if subject.is_anonymous and action is Action.CREATE and not policy.anonymous_create:
            return _refuse(Refusal.SIGN_IN, "sign in to create meetings")
        if subject.is_anonymous and action is Action.BROWSE and not policy.anonymous_browse:
            return _refuse(Refusal.SIGN_IN, "sign in to see meetings")
        return _allow("allowed")

    if target.partition == subject.partition:
        return _member_decides(subject, action, target, policy)
    if target.partition is not None:
        return _refuse(Refusal.OTHER_PARTITION, "this meeting belongs to another partition")
    # A public meeting and a subject from a partition: what any visitor may do, no more (a
    # moderator key is a visitor's too).
    visitor = Subject(name=None, moderator_of=subject.moderator_of)
    decision = _member_decides(visitor, action, target, policy)
    if decision.allowed:
        return decision
    return _refuse(
        Refusal.OUTSIDE_PARTITION, "this meeting is outside your partition; " + decision.reason
    )


def _member_decides(subject: Subject, action: Action, target: Target, policy: Policy) -> Decision:
    """Rules 5 and 6, for a subject in the meeting's partition (or both in none)."""
    if _is_moderator(subject, target):
        return _allow("moderator")
    if action is Action.CREATE:
        if subject.is_anonymous and not policy.anonymous_create:
            return _refuse(Refusal.SIGN_IN, "sign in to create meetings")
        return _allow("allowed")
    if action is Action.BROWSE:
        return _browse(subject, target, policy)
    if action is Action.ATTEND:
        return _attend(subject, target, policy, "sign in to attend meetings")
    if action is Action.VIEW_RECORDING:
        return _attend(subject, target, policy, "sign in to view recordings")
    if action in (Action.MODIFY, Action.DELETE):
        seen = _browse(subject, target, policy)
        if not seen.allowed:
            return seen
        others = (
            policy.anonymous_modify_others
            if action is Action.MODIFY
            else policy.anonymous_delete_others
        )
        return (
            _allow("allowed") if others else _refuse(Refusal.NOT_MODERATOR, _CHANGE_REASONS[action])
        )
    return _refuse(Refusal.NOT_MODERATOR, _CHANGE_REASONS[action])
