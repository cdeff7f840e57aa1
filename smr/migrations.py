"""Run the Alembic migrations from code (``smr db upgrade`` and ``smr serve`` on start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

_ROOT = Path(__file__).resolve().parent.parent


def _script_location() -> Path:
    for base in (_ROOT, Path.cwd()):
        if (base / "alembic" / "env.py").exists():
            return base / "alembic"
    raise FileNotFoundError("alembic/ migrations folder not found next to smr/ or in the cwd")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_script_location()))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
