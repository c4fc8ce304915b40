"""``python -m eventcollector`` runs the CLI."""

from eventcollector.cli import main

main()
