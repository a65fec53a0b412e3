"""Whether an ``xn--`` label is a real IDNA A-label, checked with the standard library only.

A Host label starting with ``xn--`` stands for a Unicode label (its U-label). Browsers only send
ones that decode to a valid U-label; anything else is garbage, or a way to give one tenant many
spellings, so :func:`is_valid_a_label` refuses it. The checks follow IDNA 2008 (RFC 5890-5893)
closely enough for a router:

* the rest decodes as Punycode, to a label that is not plain ASCII, and encodes back to exactly
  the same text (so each U-label has one spelling);
* the U-label is in NFC, has no hyphen at either end or in the 3rd and 4th positions, and does
  not start with a combining mark;
* every character is one IDNA 2008 could allow (lower-case letters, other letters, marks and
  digits that case folding and NFKC leave alone, plus RFC 5892's exceptions), never upper case,
  symbols, punctuation, spaces or unassigned code points;
* Arabic-Indic and extended Arabic-Indic digits are not mixed, and a right-to-left label obeys
  the Bidi rule (RFC 5893).

The table-driven details of RFC 5892 (contextual rules for joiners and a few punctuation marks)
are approximated by refusing those characters outright: stricter, never looser.
"""

from __future__ import annotations

import logging
import unicodedata

log = logging.getLogger(__name__)

_ALLOWED_CATEGORIES = frozenset({"Ll", "Lo", "Lm", "Mn", "Mc", "Nd"})
# RFC 5892 section 2.6: exceptions to the derived property.
_ALWAYS_VALID = frozenset("\u00df\u03c2\u06fd\u06fe\u0f0b\u3007")
_NEVER_VALID = frozenset("\u0640\u07fa\u302e\u302f\u3031\u3032\u3033\u3034\u3035\u303b")
# RFC 5892 sections 2.8 and 2.9: old Hangul jamo and blocks of symbols' combining marks.
_NEVER_VALID_RANGES = (
    (0x1100, 0x11FF),
    (0xA960, 0xA97F),
    (0xD7B0, 0xD7FF),
    (0x20D0, 0x20FF),
    (0x1D100, 0x1D24F),
)
_ARABIC_INDIC = frozenset(chr(c) for c in range(0x0660, 0x066A))
_EXTENDED_ARABIC_INDIC = frozenset(chr(c) for c in range(0x06F0, 0x06FA))
_RTL = frozenset({"R", "AL", "AN"})
_RTL_ALLOWED = frozenset({"R", "AL", "AN", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"})
_RTL_END = frozenset({"R", "AL", "EN", "AN"})


def is_valid_a_label(label: str) -> bool:
    """True when ``label`` (lower-case ASCII, starting with ``xn--``) is a valid A-label."""
    try:
        ulabel = label[4:].encode("ascii").decode("punycode")
        if ulabel.encode("punycode").decode("ascii") != label[4:]:
            return False
    except (UnicodeError, ValueError, OverflowError, IndexError):
        return False
    if not ulabel or ulabel.isascii():
        return False
    if ulabel[0] == "-" or ulabel[-1] == "-" or ulabel[2:4] == "--":
        return False
    if unicodedata.normalize("NFC", ulabel) != ulabel:
        return False
    if unicodedata.category(ulabel[0]).startswith("M"):
        return False
    if not all(_allowed(ch) for ch in ulabel):
        return False
    if not _ARABIC_INDIC.isdisjoint(ulabel) and not _EXTENDED_ARABIC_INDIC.isdisjoint(ulabel):
        return False
    return _bidi_ok(ulabel)


def _allowed(ch: str) -> bool:
    if ch in _ALWAYS_VALID:
        return True
    if ch in _NEVER_VALID:
        return False
    if ch == "-":
        return True
    if unicodedata.category(ch) not in _ALLOWED_CATEGORIES:
        return False
    code = ord(ch)
    if any(low <= code <= high for low, high in _NEVER_VALID_RANGES):
        return False
    # RFC 5892 section 2.2 (Unstable): case folding or compatibility mapping would change it.
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", ch).casefold())
    return folded == ch


def _bidi_ok(ulabel: str) -> bool:
    """RFC 5893's Bidi rule for one label (a left-to-right label with no RTL text passes)."""
    directions = [unicodedata.bidirectional(ch) for ch in ulabel]
    if _RTL.isdisjoint(directions):
        return True
    # Rule 1: a label with right-to-left characters starts with one (rule 5 refuses the rest).
    if directions[0] not in ("R", "AL"):
        return False
    if any(d not in _RTL_ALLOWED for d in directions):  # rule 2
        return False
    if "EN" in directions and "AN" in directions:  # rule 4
        return False
    last = [d for d in directions if d != "NSM"]
    return last[-1] in _RTL_END  # rule 3


__all__ = ["is_valid_a_label"]
