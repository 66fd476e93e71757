"""Helpers for tests that run real server processes."""
