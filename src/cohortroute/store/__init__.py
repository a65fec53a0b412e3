"""Store backends: the protocol, the URL registry, and the built-in in-memory store."""

from .base import Mutation, StateReader, Store, default_actor, known_schemes, open_store
from .memory import MemoryStore

__all__ = [
    "MemoryStore",
    "Mutation",
    "StateReader",
    "Store",
    "default_actor",
    "known_schemes",
    "open_store",
]
