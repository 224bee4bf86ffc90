"""The whiteboard: pages of strokes, shapes and texts; undo and redo of one's own actions."""
