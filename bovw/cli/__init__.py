"""The `bovw` command (entry point `bovw.cli:main`)."""

from bovw.cli.main import main

__all__ = ["main"]
