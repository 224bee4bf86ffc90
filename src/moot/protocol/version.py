"""The protocol version: a room server of another major version is refused."""

PROTOCOL_VERSION = "1.0"


def major(version: str) -> int:
    """The major part of a `MAJOR.MINOR` version; ValueError when malformed."""
    head, _, _ = version.partition(".")
    return int(head)


def is_compatible(version: str) -> bool:
    """True when a peer speaking `version` may join this cluster."""
    try:
        return major(version) == major(PROTOCOL_VERSION)
    except ValueError:
        return False
