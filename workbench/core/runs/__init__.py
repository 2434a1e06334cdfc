"""Runs: every long piece of work as a generator of events, started through one entry point."""
