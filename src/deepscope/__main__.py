"""``python -m deepscope`` runs the command line."""

from deepscope.cli.main import main

main()
