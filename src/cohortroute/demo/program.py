"""How another terminal runs this installation's ``cohortroute`` command.

The README installs into ``.venv`` without activating it, so a bare ``cohortroute`` in the
commands the demo suggests would not be found (or would be another installation's). The
console script sits next to the interpreter that runs it (``.venv/bin/``): the demo names it by
its absolute path unless ``cohortroute`` on ``PATH`` is that very script.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def console_program(
    executable: str = sys.executable,
    which: Callable[[str], str | None] = shutil.which,
) -> str:
    """``cohortroute`` when ``PATH`` finds this installation's script, else its absolute path.

    Without a console script beside the interpreter (run from a source tree): ``python -m
    cohortroute`` with the interpreter's absolute path.
    """
    script = Path(os.path.abspath(executable)).with_name("cohortroute")
    if not script.is_file():
        return f"{shlex.quote(os.path.abspath(executable))} -m cohortroute"
    found = which("cohortroute")
    if found is not None and Path(found).resolve() == script.resolve():
        return "cohortroute"
    return shlex.quote(str(script))
