"""Advice in error messages that each interface words its own way.

An error that tells its reader what to do names one of the API's verbs: the Python reader is
told ``advance(force=True)``, the operator at a terminal ``cohortroute rollout advance --force``.
The raising code writes the message once, with a placeholder per verb, and :func:`advise`
renders it for Python (``str(exc)``) and keeps the parts in ``exc.advice`` so the CLI renders
them in its own words (:meth:`Advice.render`)::

    raise advise(
        ConflictError,
        "wait 5m more, or {now} to advance now",
        now=Call("rollout advance", "advance", cli=("--force",), python="force=True"),
    )
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from .errors import CohortRouteError

log = logging.getLogger(__name__)

E = TypeVar("E", bound=CohortRouteError)


@dataclass(frozen=True)
class Call:
    """One verb with its arguments, as each interface spells it.

    ``command`` is the CLI's command path (``rollout advance``), ``cli`` its arguments;
    ``method`` is the Python method (``advance``), ``python`` its arguments as source text.
    """

    command: str
    method: str
    cli: tuple[str, ...] = ()
    python: str = ""

    def in_python(self) -> str:
        """``call advance(force=True)``."""
        return f"call {self.method}({self.python})"

    def in_cli(self, program: str = "cohortroute") -> str:
        """``run `cohortroute rollout advance --force```, with ``program`` as the prefix."""
        words = " ".join(shlex.quote(arg) for arg in self.cli)
        return f"run `{program} {self.command}{' ' + words if words else ''}`"


@dataclass(frozen=True)
class Advice:
    """A message with a :class:`Call` per placeholder, to render in either interface."""

    template: str
    calls: Mapping[str, Call]

    def render(self, say: Callable[[Call], str]) -> str:
        """The message with every call said by ``say`` (e.g. ``Call.in_cli``)."""
        return self.template.format(**{key: say(call) for key, call in self.calls.items()})


def advise(error: type[E], template: str, **calls: Call) -> E:
    """An ``error`` whose message is ``template`` with its calls said the Python way.

    The advice stays on the error (``exc.advice``) for the CLI to say its own way.
    """
    advice = Advice(template, calls)
    exc = error(advice.render(Call.in_python))
    exc.advice = advice
    return exc


def said(exc: BaseException, program: str = "cohortroute") -> str:
    """``exc``'s message with its advice said as commands (``--force``, not ``force=True``):
    the words of an operator's interfaces, the CLI and the admin console."""
    advice = getattr(exc, "advice", None)
    return str(exc) if advice is None else advice.render(lambda c: c.in_cli(program))
