"""One fork-safety registry for the whole package.

Objects that hold locks, threads, pools or connections cannot be used as they are in a child
process: a lock held by another thread at the fork stays held forever, a thread or a pool does
not exist there, a connection is shared with the parent. Such an object registers itself here
once, and the registry calls its hooks around every ``os.fork()`` (gunicorn ``--preload``,
multiprocessing's fork start method). Registration holds the object weakly.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)


_before: weakref.WeakKeyDictionary[object, Callable[[object], None]] = weakref.WeakKeyDictionary()
_after: weakref.WeakKeyDictionary[object, Callable[[object], None]] = weakref.WeakKeyDictionary()
_guard = threading.Lock()

_Owner = TypeVar("_Owner")


def register(
    owner: _Owner,
    *,
    after_in_child: Callable[[_Owner], None] | None = None,
    before: Callable[[_Owner], None] | None = None,
) -> None:
    """Call ``after_in_child(owner)`` in every forked child (and ``before(owner)`` in the parent
    just before the fork) for as long as ``owner`` is alive. The hooks receive the owner, so they
    should be unbound functions or methods looked up on the class, never closures over ``owner``
    (which would keep it alive)."""
    with _guard:
        # Each hook is stored with its own owner, so the registry may forget the owner's type.
        if after_in_child is not None:
            _after[owner] = _erased(after_in_child)
        if before is not None:
            _before[owner] = _erased(before)


def _erased(hook: Callable[[Any], None]) -> Callable[[object], None]:
    return hook


def _run(hooks: weakref.WeakKeyDictionary[object, Callable[[object], None]], when: str) -> None:
    for owner, hook in list(hooks.items()):
        try:
            hook(owner)
        except Exception:  # one broken hook must not leave the others undone
            log.exception(
                "fork hook %s failed %s for %r", getattr(hook, "__name__", hook), when, owner
            )


def _before_fork() -> None:
    _guard.acquire()
    try:
        _run(_before, "before fork")
    finally:
        _guard.release()


def _after_fork_in_child() -> None:
    global _guard
    _guard = threading.Lock()
    _run(_after, "after fork")


def pid() -> int:
    """This process's id, for objects that must notice a fork they were not told about."""
    return os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
