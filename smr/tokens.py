"""Bearer tokens: configured ones win; otherwise one admin and one ingest token are generated
once and kept in the data folder (readable by the owner only)."""

from __future__ import annotations

import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from smr.config import Settings

Role = Literal["admin", "ingest"]
TOKENS_FILE = "tokens.json"


@dataclass(frozen=True)
class Tokens:
    admin: tuple[SecretStr, ...]
    ingest: tuple[SecretStr, ...]
    generated: bool = False

    def role_of(self, presented: str) -> Role | None:
        """The role a presented token grants; compared in constant time against every token."""
        role: Role | None = None
        candidate = presented.encode()
        for name, tokens in (("ingest", self.ingest), ("admin", self.admin)):
            for token in tokens:
                if hmac.compare_digest(candidate, token.get_secret_value().encode()):
                    role = name  # type: ignore[assignment]
        return role


def load_tokens(settings: Settings, *, generate: bool) -> Tokens:
    """Configured tokens, else the stored ones, else (when ``generate``) new stored ones."""
    if settings.admin_tokens or settings.ingest_tokens:
        return Tokens(tuple(settings.admin_tokens), tuple(settings.ingest_tokens))
    path = settings.data_dir / TOKENS_FILE
    if path.exists():
        stored = json.loads(path.read_text())
        return Tokens((SecretStr(stored["admin"]),), (SecretStr(stored["ingest"]),))
    if not generate:
        return Tokens((), ())
    return _generate(path)


def _generate(path: Path) -> Tokens:
    admin, ingest = (
        f"smr_admin_{secrets.token_urlsafe(24)}",
        f"smr_ingest_{secrets.token_urlsafe(24)}",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"admin": admin, "ingest": ingest}, handle)
    return Tokens((SecretStr(admin),), (SecretStr(ingest),), generated=True)
