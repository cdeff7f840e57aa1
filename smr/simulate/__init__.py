"""Simulation: what playbooks would do for one contact over the coming days, computed by the real
pipeline on a scratch database in virtual time; the service's database and channels are never
touched."""

from smr.simulate.engine import simulate
from smr.simulate.scenario import (
    DEFAULT_HORIZON,
    MAX_EVENTS,
    MAX_HORIZON,
    Horizon,
    Problem,
    ScenarioInvalid,
    load_yaml,
    parse_horizon,
    scenario_events,
)
from smr.simulate.table import render
from smr.simulate.timeline import Entry, Simulation

__all__ = [
    "DEFAULT_HORIZON",
    "MAX_EVENTS",
    "MAX_HORIZON",
    "Entry",
    "Horizon",
    "Problem",
    "ScenarioInvalid",
    "Simulation",
    "load_yaml",
    "parse_horizon",
    "render",
    "scenario_events",
    "simulate",
]
