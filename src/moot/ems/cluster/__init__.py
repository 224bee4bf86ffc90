"""The cluster manager: registry of room servers, live load, placement calls."""
