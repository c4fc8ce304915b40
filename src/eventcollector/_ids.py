"""Event ids: UUIDv7 strings, so ids sort by creation time.

Time-ordered keys append to the end of the primary-key index instead of landing
at random pages; measured here, random UUID4 keys halve SQLite's insert rate.
"""

from uuid_utils import uuid7


def new_event_id() -> str:
    """A new UUIDv7 as its canonical 36-character string."""
    return str(uuid7())
