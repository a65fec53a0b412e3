"""The command line: the operator's tool, with the same verbs as the Python API.

``cohortroute [--store URL] [--actor NAME] COMMAND ...`` -- the store comes from ``--store`` or
the ``COHORTROUTE_STORE`` environment variable. Every change is recorded in the store's audit
log under the actor (``--actor``, else ``$USER``). See docs/cli.md.

``cohortroute.cli:main`` is the console script; :func:`run` runs a command line in-process with
its own output streams. The package: :mod:`~cohortroute.cli.main` (the parser, exit codes and
error mapping), :mod:`~cohortroute.cli.options` (registering commands, argument types),
:mod:`~cohortroute.cli.context` (the store a command runs on), one module per verb group
(:mod:`~cohortroute.cli.state`, :mod:`~cohortroute.cli.tenants`, :mod:`~cohortroute.cli.rollout`,
:mod:`~cohortroute.cli.demo`), :mod:`~cohortroute.cli.render` (text and ``--json`` output) and
:mod:`~cohortroute.cli.loader` (``--app``).
"""

from __future__ import annotations

from .context import ENV_STORE, EXIT_ERROR, EXIT_OK, EXIT_USAGE, UsageError
from .main import build_parser, main, run

__all__ = [
    "ENV_STORE",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "build_parser",
    "main",
    "run",
]
