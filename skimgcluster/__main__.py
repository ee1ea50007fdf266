"""``python -m skimgcluster``: the command line."""

from ._cli import run

run()
