"""Where a SQLite store lives and what can go wrong with its file.

The ``sqlite://`` URL, the checks on its path (so a wrong one fails at start-up with a fix), and
SQLite's result codes turned into errors that say what to do.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from urllib.parse import parse_qsl, unquote

from ..errors import ConfigurationError, StoreError, StoreUnavailableError
from ._urls import number_option

log = logging.getLogger(__name__)

# SQLite result codes (the primary code is the low byte of an extended one).
BUSY, LOCKED, READONLY, CANTOPEN, NOTADB, CORRUPT, FULL = 5, 6, 8, 14, 26, 11, 13

OPTIONS = ("timeout", "synchronous", "mode")

#: The longest ``timeout`` a SQLite URL may ask for: an hour.
MAX_TIMEOUT = 3600.0


def result_code(exc: sqlite3.Error) -> int | None:
    """The primary SQLite result code of an error (parsed from the text before Python 3.11)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(exc).lower()
    for needle, value in (
        ("locked", BUSY),
        ("readonly", READONLY),
        ("unable to open", CANTOPEN),
        ("not a database", NOTADB),
        ("malformed", CORRUPT),
        ("full", FULL),
    ):
        if needle in text:
            return value
    return None


def is_busy(exc: sqlite3.Error) -> bool:
    """True for "database is locked" (another connection holds the write lock): retried."""
    return isinstance(exc, sqlite3.OperationalError) and result_code(exc) in (BUSY, LOCKED)


def parse_url(url: str) -> tuple[str, float, str, bool | None]:
    """The path, ``timeout``, ``synchronous`` and ``mode`` (True: may create the file, False:
    must exist, None: not given) a ``sqlite://`` URL names."""
    prefix = "sqlite://"
    if not url.lower().startswith(prefix):
        raise ConfigurationError(f"not a SQLite store URL: {url!r}")
    rest, _, query = url[len(prefix) :].partition("?")
    if not rest.startswith("/") or "#" in rest:
        raise ConfigurationError(
            f"malformed SQLite store URL {url!r}: a SQLite URL has no host; use "
            "'sqlite:///relative/path.db' or 'sqlite:////absolute/path.db'"
        )
    path = unquote(rest[1:])
    if not path or path.endswith("/"):
        raise ConfigurationError(
            f"the SQLite store URL {url!r} names no file; use for example "
            "'sqlite:///cohortroute.db'"
        )
    if path == ":memory:" or path.startswith("file:"):
        raise ConfigurationError(
            f"{url!r}: an in-memory SQLite database is private to one connection; use "
            "'memory://' for a store in this process only"
        )
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigurationError(
            f"malformed query in the SQLite store URL {url!r}; options look like "
            "'?timeout=10&synchronous=full'"
        ) from None
    options = dict(pairs)
    unknown = sorted(set(options) - set(OPTIONS)) or (
        [] if len(options) == len(pairs) else ["(a repeated option)"]
    )
    if unknown:
        raise ConfigurationError(
            f"unknown option {', '.join(unknown)} in the SQLite store URL {url!r}; "
            f"known options: {', '.join(OPTIONS)}"
        )
    timeout = number_option(
        options.get("timeout", "30"), "timeout", url, minimum=0, maximum=MAX_TIMEOUT, unit="seconds"
    )
    mode = options.get("mode")
    if mode not in (None, "rw", "rwc"):
        raise ConfigurationError(
            f"invalid mode={mode!r} in the SQLite store URL {url!r}: give mode=rwc (create the "
            "store if it does not exist) or mode=rw (it must exist already)"
        )
    create = None if mode is None else mode == "rwc"
    return path, timeout, options.get("synchronous", "full"), create


def check_path(path: str, create: bool) -> None:
    """Refuse paths SQLite cannot use now, with a message that says how to fix them.

    Raised when the store is used, not when it is built: a volume mounted late or permissions
    fixed later make the same store work, and a router starts meanwhile (serving the default).
    """
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise StoreUnavailableError(
            f"the SQLite store path {path} is a directory; name a file in it, for example "
            f"'sqlite:///{os.path.join(path, 'cohortroute.db')}'"
        )
    if not os.path.isdir(folder):
        raise StoreUnavailableError(
            f"cannot open the SQLite store {path}: the directory {folder} does not exist; "
            f"create it (mkdir -p {folder}) or fix the store URL"
        )
    if not create and not os.path.exists(path):
        raise StoreUnavailableError(missing(path))
    # WAL mode creates <file>-wal and <file>-shm next to the file, so the directory must be
    # writable even when the file already exists.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreUnavailableError(
            f"cannot use the SQLite store {path}: the directory {folder} is not writable by "
            "this user (SQLite keeps its -wal and -shm files there); fix its permissions "
            "or choose another path"
        )
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        raise StoreUnavailableError(
            f"cannot use the SQLite store {path}: the file is not readable and writable by "
            "this user; fix its permissions or choose another path"
        )


def missing(path: str, what: str = "the file does not exist") -> str:
    """Why a store that must exist (``mode=rw``) cannot be used, and how to create it."""
    return (
        f"there is no cohortroute store at {path} ({what}). Check the path (a sqlite:/// path "
        "is relative to the current directory; sqlite://// starts at /). A store is created "
        "by the first router that opens it, or when its URL ends in ?mode=rwc"
    )


def open_error(exc: sqlite3.Error, path: str) -> StoreError:
    """Translate a failure to open into an error that says what to fix."""
    code = result_code(exc)
    if code == NOTADB:
        return StoreUnavailableError(
            f"{path} is not a SQLite database (or it is encrypted or damaged); cohortroute "
            "left it untouched. Point the store URL at a new file or a cohortroute store."
        )
    if code == READONLY:
        return StoreUnavailableError(
            f"cannot write the SQLite store {path}: it is read-only for this user; fix the "
            "permissions of the file, its -wal and -shm files and its directory"
        )
    if code == CANTOPEN:
        return StoreUnavailableError(
            f"cannot open or create the SQLite store {path} ({exc}); check that the "
            "directory exists and that this user may write to it"
        )
    if code == CORRUPT:
        return StoreError(f"the SQLite store {path} is damaged ({exc}); restore it from a backup")
    return StoreError(f"cannot open the SQLite store {path}: {exc}")


def identity(path: str) -> tuple[int, int] | None:
    """The file's identity (device, inode), None when there is no file at ``path``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreUnavailableError(f"cannot check the SQLite store {path}: {exc}") from exc
    return st.st_dev, st.st_ino


def deleted(path: str) -> StoreUnavailableError:
    """The file this process uses was deleted: say so, and what to do."""
    return StoreUnavailableError(
        f"the SQLite store file {path} was deleted while this process was using it; serving "
        "the last-known state. Restore the file from a backup (this process switches to it "
        "and logs that it did), or restart the routers to start over with a new, empty store"
    )


def replaced(path: str) -> str:
    """The log line for a file replaced under a running process."""
    return (
        f"the SQLite store file {path} was replaced (deleted or moved, and another file put in "
        "its place) while this process was using it; switching to the new file, whose state "
        "may differ. If that was a mistake, restore the right file from a backup"
    )


def failure(exc: sqlite3.Error, path: str, timeout: float) -> StoreError:
    """Translate a failure while using the store into a StoreError (original chained)."""
    code = result_code(exc)
    if is_busy(exc):
        return StoreUnavailableError(
            f"the SQLite store {path} stayed locked for {timeout:g} s: another "
            "process holds a long write transaction; retry, or raise ?timeout= in the URL"
        )
    if code == READONLY:
        return StoreError(
            f"cannot write the SQLite store {path}: it became read-only for this process; "
            "fix the permissions of the file, its -wal and -shm files and its directory"
        )
    if code == FULL:
        return StoreError(
            f"cannot write the SQLite store {path}: the disk is full, so this change was not "
            f"written (the store is intact). Free space on the file system that holds "
            f"{os.path.dirname(path) or '.'} (its -wal file grows with each write until a "
            "checkpoint), then retry"
        )
    if code in (CORRUPT, NOTADB):
        return StoreError(f"the SQLite store {path} is damaged ({exc}); restore it from a backup")
    return StoreError(f"the SQLite store {path} failed: {exc}")
