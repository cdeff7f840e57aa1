"""What ``smr api`` serves (the API without the dispatcher), as a uvicorn factory.

``bench/ingest.py`` runs it as ``uvicorn smr_app:create --factory`` so SMR gets exactly the
uvicorn settings the bare endpoint gets (``smr api`` itself runs uvicorn with its access log
on). The schema is migrated beforehand with ``smr db upgrade``, as ``smr api`` would on start.
"""

from __future__ import annotations

from fastapi import FastAPI

from smr.api.app import create_app
from smr.config import Settings
from smr.runtime import build_runtime


def create() -> FastAPI:
    return create_app(build_runtime(Settings()), with_ticker=False)
