"""The shop, release 2026.12: a build of its own (the other release has a ``shop`` too)."""

RELEASE = "2026.12"
