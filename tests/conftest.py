"""Shared test set-up. Service fixtures (Redis, PostgreSQL) live in tests/services.py."""

import pytest

# tests.services is both a fixture plugin and a helper library imported from several modules:
# register it for assertion rewriting before any of them imports it.
pytest.register_assert_rewrite("tests.services")
