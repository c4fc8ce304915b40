"""The ``eventcollector`` command line: a thin layer over the library."""

from eventcollector.cli.app import app, main

__all__ = ["app", "main"]
