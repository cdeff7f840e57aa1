"""Playbook tests: YAML cases kept beside the playbooks (``playbooks/tests/``), each a customer,
events at given moments and what the playbooks must do, run on the simulator by ``smr
playbooks test``."""

from smr.playbook_tests.runner import FOLDER, Failure, Outcome, case_files, run_files

__all__ = ["FOLDER", "Failure", "Outcome", "case_files", "run_files"]
