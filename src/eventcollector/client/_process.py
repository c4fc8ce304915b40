"""Process-wide hooks of the remote client: deliver at exit, start afresh after a fork.

Every ``Sender`` is tracked (weakly) from its construction. At interpreter exit each
is closed with its ``exit_timeout``, so that what short-lived scripts emitted just
before exiting is delivered (or spooled). In a forked child the parent's threads are
gone: each sender starts afresh (``after_fork_in_child``). The hooks are registered
once, by the first sender.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
from typing import Any, Protocol

__all__ = ["Tracked", "abandon", "track"]


class Tracked(Protocol):
    """What the hooks need of a sender."""

    def close_at_exit(self) -> None:
        """Deliver (or spool) what is buffered, within the configured exit timeout."""

    def after_fork_in_child(self) -> None:
        """Start afresh in a forked child (the parent's threads do not exist there)."""


_LIVE: weakref.WeakSet[Tracked] = weakref.WeakSet()
_ABANDONED: list[Any] = []
_hooks_registered = False
_hooks_lock = threading.Lock()


def track(sender: Tracked) -> None:
    """Close ``sender`` at exit and reset it in forked children."""
    _LIVE.add(sender)
    _register_process_hooks()


def abandon(client: Any) -> None:
    """Keep ``client`` referenced for the rest of the process, never closed."""
    _ABANDONED.append(client)


def _register_process_hooks() -> None:
    global _hooks_registered
    with _hooks_lock:
        if _hooks_registered:
            return
        _hooks_registered = True
    atexit.register(_close_all_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_reset_all_in_child)


def _close_all_at_exit() -> None:
    """Deliver (or spool) what short-lived scripts emitted just before exiting."""
    for sender in list(_LIVE):
        # Nothing useful can be done about a failure at interpreter exit.
        with contextlib.suppress(Exception):
            sender.close_at_exit()


def _reset_all_in_child() -> None:
    for sender in list(_LIVE):
        sender.after_fork_in_child()
