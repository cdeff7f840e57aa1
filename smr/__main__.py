"""``python -m smr`` is the ``smr`` command."""

from smr.cli import app

app()
