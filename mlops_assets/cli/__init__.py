"""`mlops-assets`: the command line, one module per verb, each a thin front over the jobs the UI runs."""

from mlops_assets.cli.main import main

__all__ = ["main"]
