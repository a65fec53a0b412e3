"""Helpers for test suites: force versions through a router, and the store contract suite."""
