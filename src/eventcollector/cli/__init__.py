"""The ``eventcollector`` command line: a thin layer over the library.

Commands live in one module per concern; importing a module registers its
commands on ``app``. To add commands (``serve``, ``keys``), add the module's
name to ``COMMAND_MODULES``.
"""

from importlib import import_module

from eventcollector.cli.app import app, main

COMMAND_MODULES = (
    "query",
    "aggregate",
    "analysis",
    "transfer",
    "tail",
    "emit",
    "serve",
    "issues",
    "indexes",
    "alerts",
)

for _name in COMMAND_MODULES:
    import_module(f"eventcollector.cli.{_name}")

__all__ = ["COMMAND_MODULES", "app", "main"]
