"""Moderator controls: lock the meeting, remove someone (and let them back)."""
