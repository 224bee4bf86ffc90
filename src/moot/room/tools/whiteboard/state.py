"""The whiteboard as a pure state machine: apply(state, event, actor) -> state.

Elements are kept in the order added (the order they are drawn in). Each person has an
undo and a redo stack of their own actions, as invertible steps (added these ids / erased
these elements): undoing never removes someone else's work, and a step whose elements
someone else erased meanwhile undoes what is left of it. Clearing a page (a presenter)
drops every step on that page from every stack, so nothing cleared comes back.

Pages see changes as deltas (`delta`): the board can hold thousands of elements, and a
stroke should not resend them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

from moot.protocol.tools import (
    MAX_BOARD_ELEMENTS,
    MAX_BOARD_PAGES,
    BoardAdd,
    BoardAddPage,
    BoardClear,
    BoardElement,
    BoardErase,
    BoardPolicy,
    BoardRedo,
    BoardShowPage,
    BoardUndo,
    ToolEvent,
)
from moot.room.tools.base import Actor, Refused, Tool, only_moderators, only_presenters

K = TypeVar("K")
V = TypeVar("V")
Surface = tuple[int, str | None]  # a board page, or (0, a slide's key)

# How many steps back one person may undo.
MAX_UNDO = 100


@dataclass(frozen=True, slots=True)
class Item:
    page: int
    element: BoardElement
    by: str  # the name it was drawn under
    slide: str | None = None  # drawn over this slide of a presentation, not on a page

    @property
    def surface(self) -> Surface:
        return (0, self.slide) if self.slide else (self.page, None)


@dataclass(frozen=True, slots=True)
class Step:
    """One undoable action: elements added (undo: remove them), or erased (undo: put them
    back)."""

    action: Literal["added", "erased"]
    surface: Surface  # the page, or the slide, it was done on
    items: tuple[Item, ...]


Stacks = dict[str, tuple[Step, ...]]  # person -> their steps, the last last


@dataclass(frozen=True, slots=True)
class Board:
    pages: int = 1
    shown: int = 0
    who: Literal["everyone", "moderators"] = "everyone"
    items: dict[str, Item] = field(default_factory=dict)  # element id -> item, in order
    undo: Stacks = field(default_factory=dict)
    redo: Stacks = field(default_factory=dict)
    # How many elements each page (or slide) holds: its limit is checked without counting
    # them (a count per stroke made a replay of a board over 5,000 elements quadratic).
    sizes: dict[Surface, int] = field(default_factory=dict)


def _may_draw(state: Board, actor: Actor) -> None:
    # "moderators": the stage's people, moderators and presenters (who annotate slides).
    if state.who == "moderators" and not actor.presents:
        raise Refused("only moderators and presenters may draw on this board now")


@dataclass(slots=True)
class Elements:
    """The board's elements being changed: the map, and each surface's size with it."""

    items: dict[str, Item]
    sizes: dict[Surface, int]

    def put(self, item: Item) -> None:
        if item.element.id not in self.items:
            self.sizes[item.surface] = self.sizes.get(item.surface, 0) + 1
        self.items[item.element.id] = item

    def drop(self, element_id: str) -> None:
        gone = self.items.pop(element_id, None)
        if gone is not None:
            self.sizes[gone.surface] -= 1

    def do(self, step: Step) -> None:
        """Do `step` (again): its elements added back, or erased again."""
        for item in step.items:
            if step.action == "added":
                self.put(item)
            else:
                self.drop(item.element.id)


def _own(mapping: dict[K, V], owned: bool) -> dict[K, V]:
    """The mapping to change: itself when the caller owns the state (a replay), else a copy
    (the state before stays as it was: `apply` is pure)."""
    return mapping if owned else dict(mapping)


def _mine(state: Board, owned: bool) -> tuple[Elements, Stacks, Stacks]:
    """The elements (map and sizes) and the undo and redo stacks, to change."""
    elements = Elements(_own(state.items, owned), _own(state.sizes, owned))
    return elements, _own(state.undo, owned), _own(state.redo, owned)


def _push(stacks: Stacks, person: str, step: Step) -> None:
    stacks[person] = (*stacks.get(person, ()), step)[-MAX_UNDO:]


def _with(state: Board, elements: Elements, undo: Stacks, redo: Stacks) -> Board:
    return replace(state, items=elements.items, sizes=elements.sizes, undo=undo, redo=redo)


def _inverse(step: Step) -> Step:
    return Step("erased" if step.action == "added" else "added", step.surface, step.items)


def apply(state: Board, event: ToolEvent, actor: Actor) -> Board:
    """The board after `event`; `state` is left as it was."""
    return _apply(state, event, actor, owned=False)


def apply_in_place(state: Board, event: ToolEvent, actor: Actor) -> Board:
    """`apply` for a replay, which owns the state it rebuilds: the element map is changed,
    not copied. A copy per event made a replay of 5,000 strokes (a failover, a restart)
    quadratic. Every check comes before any change, so a refused event changes nothing."""
    return _apply(state, event, actor, owned=True)


def _apply(state: Board, event: ToolEvent, actor: Actor, *, owned: bool) -> Board:
    if isinstance(event, BoardAdd):
        _may_draw(state, actor)
        if event.slide is None and event.page >= state.pages:
            raise Refused("there is no such page on the board")
        if event.element.id in state.items:
            raise Refused("an element with this id is on the board already")
        item = Item(0 if event.slide else event.page, event.element, actor.user, event.slide)
        if state.sizes.get(item.surface, 0) >= MAX_BOARD_ELEMENTS:
            raise Refused(f"a board page holds at most {MAX_BOARD_ELEMENTS} elements")
        elements, undo, redo = _mine(state, owned)
        elements.put(item)
        _push(undo, actor.person, Step("added", item.surface, (item,)))
        redo[actor.person] = ()
        return _with(state, elements, undo, redo)
    if isinstance(event, BoardErase):
        _may_draw(state, actor)
        found = tuple(state.items[i] for i in dict.fromkeys(event.ids) if i in state.items)
        if not found:
            raise Refused("those elements are not on the board")
        step = Step("erased", found[0].surface, found)
        elements, undo, redo = _mine(state, owned)
        elements.do(step)
        _push(undo, actor.person, step)
        redo[actor.person] = ()
        return _with(state, elements, undo, redo)
    if isinstance(event, BoardUndo | BoardRedo):
        _may_draw(state, actor)
        undoing = isinstance(event, BoardUndo)
        steps = (state.undo if undoing else state.redo).get(actor.person, ())
        if not steps:
            raise Refused("nothing to undo" if undoing else "nothing to redo")
        step = steps[-1]
        elements, undo, redo = _mine(state, owned)
        elements.do(_inverse(step) if undoing else step)
        source, target = (undo, redo) if undoing else (redo, undo)
        source[actor.person] = steps[:-1]
        _push(target, actor.person, step)
        return _with(state, elements, undo, redo)
    if isinstance(event, BoardClear):
        only_presenters(actor, "clear a board page")
        if event.slide is None and event.page >= state.pages:
            raise Refused("there is no such page on the board")
        cleared = (0, event.slide) if event.slide else (event.page, None)

        def kept(stacks: Stacks) -> Stacks:
            return {
                p: tuple(s for s in steps if s.surface != cleared) for p, steps in stacks.items()
            }

        return replace(
            state,
            items={k: v for k, v in state.items.items() if v.surface != cleared},
            undo=kept(state.undo),
            redo=kept(state.redo),
            sizes={k: n for k, n in state.sizes.items() if k != cleared},
        )
    if isinstance(event, BoardAddPage):
        only_presenters(actor, "add a board page")
        if state.pages >= MAX_BOARD_PAGES:
            raise Refused(f"a board has at most {MAX_BOARD_PAGES} pages")
        return replace(state, pages=state.pages + 1, shown=state.pages)
    if isinstance(event, BoardShowPage):
        only_presenters(actor, "turn the board's page")
        if event.page >= state.pages:
            raise Refused("there is no such page on the board")
        return replace(state, shown=event.page)
    if isinstance(event, BoardPolicy):
        only_moderators(actor, "choose who may draw")
        return replace(state, who=event.who)
    raise Refused(f"the whiteboard does not take {event.kind}")


def _number(value: float) -> float:
    # 120 rather than 120.0: a late joiner's board of 5,000 strokes is a quarter smaller.
    return int(value) if float(value).is_integer() else value


def _item_json(item: Item) -> dict[str, Any]:
    """An element as pages get it: the element's fields (a text only on a text), where it
    is and who drew it. Compact: a board of thousands of strokes is megabytes."""
    element = item.element
    shown: dict[str, Any] = {
        "page": item.page,
        "by": item.by,
        **element.model_dump(mode="json", exclude={"points", "text"}),
        "points": [[_number(x), _number(y)] for x, y in element.points],
    }
    if element.text:
        shown["text"] = element.text
    if item.slide:
        shown["slide"] = item.slide
    return shown


def _frame(state: Board) -> dict[str, Any]:
    return {"pages": state.pages, "shown": state.shown, "who": state.who}


def view(state: Board, viewer: Actor) -> dict[str, Any]:
    """The whole board (a page joining); the same for everyone."""
    return {**_frame(state), "items": [_item_json(i) for i in state.items.values()]}


def delta(before: Board, after: Board) -> dict[str, Any]:
    """What changed from `before` to `after`: elements added (in order), ids removed."""
    added = [_item_json(i) for k, i in after.items.items() if k not in before.items]
    removed = [k for k in before.items if k not in after.items]
    return {**_frame(after), "add": added, "remove": removed}


def announce(event: ToolEvent, actor: Actor) -> str:
    if isinstance(event, BoardClear) and event.slide:
        return f"{actor.user} cleared the notes on a slide"
    if isinstance(event, BoardClear):
        return f"{actor.user} cleared page {event.page + 1} of the board"
    if isinstance(event, BoardAddPage):
        return f"{actor.user} added a page to the board"
    if isinstance(event, BoardShowPage):
        return f"The board shows page {event.page + 1}"
    if isinstance(event, BoardPolicy):
        who = "everyone" if event.who == "everyone" else "moderators only"
        return f"{actor.user} let {who} draw on the board"
    return ""  # strokes: far too many to read out


TOOL: Tool[Board] = Tool(
    name="board",
    enabled_by="whiteboard",
    initial=Board,
    apply=apply,
    view=view,
    announce=announce,
    personal=False,
    delta=delta,
    apply_in_place=apply_in_place,
)
