"""``python -m eoengine`` runs the CLI."""

from eoengine.cli.main import main

main()
