"""Presentations: a PDF of the meeting's files shown page by page, everyone following the
presenter's page; part of the whiteboard tool, as in Sametime (docs/protocol.md, "Tools")."""
