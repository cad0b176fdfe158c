"""The ``extractbench`` command line: :func:`main` parses and dispatches; one module per
command group imports its heavy parts only when that command runs."""

from extractbench.cli.main import main

__all__ = ["main"]
