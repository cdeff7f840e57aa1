"""SMR, the Social Marketing Robot."""

__version__ = "0.1.0"
