"""Community services on a room server: presence and instant messages (docs/architecture.md)."""
