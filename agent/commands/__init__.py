"""Command bodies the CLI wires up: plain functions that print with rich and return an exit code."""
