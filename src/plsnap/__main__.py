"""``python -m plsnap``: the same as the ``plsnap`` command."""

from plsnap.cli import run

run()
