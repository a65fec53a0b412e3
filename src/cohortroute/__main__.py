"""``python -m cohortroute``: the same command line as the ``cohortroute`` console script."""

from .cli import main

raise SystemExit(main())
