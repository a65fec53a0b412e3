"""Shared fixtures. Service fixtures (Redis, PostgreSQL) live in tests/services.py."""
