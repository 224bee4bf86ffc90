"""A board page holds at most MAX_BOARD_ELEMENTS elements: the one more is refused on that
page, not on another (the page is counted only once the whole board is that large)."""

from __future__ import annotations

import pytest

from moot.protocol.tools import MAX_BOARD_ELEMENTS, BoardAdd, BoardAddPage, BoardElement
from moot.room.tools.base import Actor, Refused
from moot.room.tools.whiteboard.state import Board, apply

MIA = Actor(user="Mia", person="u-mia", role="moderator")


def add(board: Board, n: int, page: int = 0) -> Board:
    element = BoardElement(id=f"s{n}", shape="line", points=[(1, 1), (2, 2)])
    return apply(board, BoardAdd(page=page, element=element), MIA)


def test_a_full_page_refuses_one_more_and_another_page_takes_it() -> None:
    board = apply(Board(), BoardAddPage(), MIA)
    for n in range(MAX_BOARD_ELEMENTS - 1):
        board = add(board, n)
    board = add(board, MAX_BOARD_ELEMENTS, page=1)  # the board holds the limit now
    board = add(board, MAX_BOARD_ELEMENTS + 1)  # page 0 is not full yet: its last one
    with pytest.raises(Refused, match=f"at most {MAX_BOARD_ELEMENTS} elements"):
        add(board, MAX_BOARD_ELEMENTS + 2)
    board = add(board, MAX_BOARD_ELEMENTS + 3, page=1)
    assert sum(1 for i in board.items.values() if i.page == 1) == 2
