"""MurmurHash3 x86_32: the ``mmh3`` wheel when installed (``cohortroute[unleash]``), else a
pure-Python implementation giving the same numbers.

Only the Unleash-compatible bucketer uses it, and only on a cache miss; the pure version costs
a few microseconds for a short key (``benchmarks/murmur3.py`` measures both).
"""

from __future__ import annotations

from collections.abc import Callable

_C1 = 0xCC9E2D51
_C2 = 0x1B873593
_MASK = 0xFFFFFFFF


def murmur3_32_pure(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86_32 of ``data`` as an unsigned 32-bit integer (reference algorithm)."""
    h = seed & _MASK
    length = len(data)
    tail = length - length % 4
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _C1) & _MASK
        k = ((k << 15) | (k >> 17)) & _MASK
        k = (k * _C2) & _MASK
        h ^= k
        h = ((h << 13) | (h >> 19)) & _MASK
        h = (h * 5 + 0xE6546B64) & _MASK
    rest = length & 3
    if rest:
        k = int.from_bytes(data[tail:], "little")
        k = (k * _C1) & _MASK
        k = ((k << 15) | (k >> 17)) & _MASK
        k = (k * _C2) & _MASK
        h ^= k
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h


def _select() -> Callable[[bytes, int], int]:
    try:
        import mmh3
    except ImportError:
        return murmur3_32_pure

    def fast(data: bytes, seed: int = 0) -> int:
        return int(mmh3.hash(data, seed, signed=False))

    return fast


murmur3_32: Callable[[bytes, int], int] = _select()
"""MurmurHash3 x86_32 (unsigned): ``mmh3`` when installed, else :func:`murmur3_32_pure`."""
