"""All SQL lives here. Functions take the caller's session and never commit."""

from types import SimpleNamespace


class Record(SimpleNamespace):
    """A row a repository read for a worker (a claimed delivery or run): its columns as
    attributes."""
