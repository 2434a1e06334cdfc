"""Test helpers for us and for plugin authors (pytest fixtures in :mod:`.fixtures`)."""
