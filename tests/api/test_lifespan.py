"""What the application does when it starts, beyond serving."""

from __future__ import annotations

import gc

from smr.api.app import create_app
from smr.runtime import COLLECTOR_THRESHOLDS, Runtime


async def test_startup_heap_is_left_out_of_garbage_collections(runtime: Runtime) -> None:
    app = create_app(runtime)
    gc.unfreeze()
    thresholds = gc.get_threshold()
    try:
        async with app.router.lifespan_context(app):
            collected = {id(o) for o in gc.get_objects()}
            # Objects held since startup are frozen: no collection walks them again.
            assert gc.get_freeze_count() > 0
            assert id(runtime.catalog.__dict__) not in collected
            # What is created afterwards is collected as usual.
            later: list[object] = []
            assert any(o is later for o in gc.get_objects(generation=0))
            # And the collector runs less often than CPython's defaults have it.
            assert gc.get_threshold() == COLLECTOR_THRESHOLDS != thresholds
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
