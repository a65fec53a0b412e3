"""Store backends: the protocol, the URL registry, and the built-in in-memory store."""

from .base import (
    ChangeFn,
    Mutation,
    StateReader,
    Store,
    default_actor,
    known_schemes,
    open_store,
)
from .memory import MemoryStore

__all__ = [
    "ChangeFn",
    "MemoryStore",
    "Mutation",
    "StateReader",
    "Store",
    "default_actor",
    "known_schemes",
    "open_store",
]
