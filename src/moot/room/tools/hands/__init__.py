"""Raised hands: an ordered queue everyone sees; a moderator lowers anyone's."""
