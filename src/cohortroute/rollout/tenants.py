"""Parsing what operators type or import: tenant lists (lines or CSV) and durations."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import ValidationError, quoted
from ..policy import check_tag_name, check_tenant_name


def format_duration(seconds: float) -> str:
    """Seconds the way the controller's messages show them: ``75`` -> ``1m15s``, ``2h05m``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def parse_duration(text: str | float) -> float:
    """Parse ``90``, ``90s``, ``15m``, ``2h``, ``1d`` or ``1h30m`` into seconds.

    ASCII digits only, and the result is finite and not negative: ``nan``, ``inf`` or a number
    too large for a float would make a dwell that never ends or never applies.
    """
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        value = text.strip().lower()
        if re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
            seconds = float(value)
        else:
            parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)([smhd])", value)
            if not parts or "".join(n + u for n, u in parts) != value:
                raise ValidationError(
                    f"invalid duration {quoted(text, 60)}: use seconds or a number with s, m, h "
                    "or d, like 2h or 90m"
                )
            factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}
            seconds = sum(float(n) * factor[u] for n, u in parts)
    if not 0 <= seconds <= MAX_DURATION:
        raise ValidationError(
            f"invalid duration {quoted(text, 60)}: give 0 to {MAX_DURATION // 86400:.0f} days, "
            "like 2h"
        )
    return seconds


MAX_DURATION = 3650 * 86400.0
"""The longest duration accepted (ten years): anything longer is a typo, or infinity."""


def read_lines(source: str | os.PathLike[str] | Iterable[str]) -> Iterator[str]:
    """The lines of a file (given by its path), or the given lines themselves.

    A file that is not UTF-8 text (Latin-1, a binary) is a ValidationError naming the line.
    """
    if not isinstance(source, (str, os.PathLike)):
        yield from source
        return
    with Path(source).open("rb") as handle:  # decoded per line, to name the line that is not
        yield from decode_lines(handle, f"{quoted(os.fspath(source), 200)}")


def decode_lines(handle: Iterable[bytes], name: str) -> Iterator[str]:
    """The lines of a binary stream as UTF-8 text; ValidationError naming the first that is not
    (``name`` says what is read: a file's quoted path, or "standard input")."""
    for number, raw in enumerate(handle, 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(
                f"{name} is not UTF-8 text (line {number}): save it as UTF-8, one tenant per "
                "line or CSV name,tag,tag..."
            ) from None


def parse_tenant_lines(lines: Iterable[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Parse tenant import lines: names, and tags per tenant (see ``import_tenants``).

    Raises ValidationError naming the line of the first bad tenant or tag.
    """
    names: list[str] = []
    tags: dict[str, list[str]] = {}
    for number, line in enumerate(lines, 1):
        # A spreadsheet's "CSV UTF-8" starts with a byte order mark: not part of the first cell.
        text = (line.removeprefix("\ufeff") if number == 1 else line).strip()
        if not text or text.startswith("#"):
            continue
        try:
            cells = next(csv.reader(io.StringIO(text))) if "," in text or '"' in text else [text]
        except csv.Error as exc:  # a cell over the csv module's size limit, a stray NUL
            raise ValidationError(f"line {number}: not a CSV row ({exc})") from None
        cells = [c.strip() for c in cells]
        if number == 1 and cells[0].lower() in ("tenant", "name"):
            continue
        try:
            name = check_tenant_name(cells[0])
            labels = [
                check_tag_name(t)
                for cell in cells[1:]
                for t in cell.replace(";", " ").replace("|", " ").split()
            ]
        except ValidationError as exc:
            raise ValidationError(f"line {number}: {exc}") from None
        names.append(name)
        if labels:
            tags.setdefault(name, []).extend(labels)
    return names, tags
