"""Polls: single or multiple choice, anonymous or named, one vote per person, changeable
until the poll is closed (docs/protocol.md, "Tools")."""
