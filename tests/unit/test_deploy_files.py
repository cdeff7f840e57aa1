"""The deployment files agree with the code: docker-compose.yml runs commands the CLI has, with
the ports its health checks probe and no secret written down; the Dockerfile installs the lock;
the lock files pin every dependency of pyproject.toml at a version it allows."""

from __future__ import annotations

import re
import tomllib
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from typer.testing import CliRunner

from smr.cli import app

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = re.compile(r"TOKEN|PASSWORD|SECRET|AES_KEY", re.IGNORECASE)
REQUIRED_VARIABLE = re.compile(r"\$\{[A-Z0-9_]+:\?[^}]+\}")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)( \\\n\s+--hash=sha256:[0-9a-f]{64})?", re.M)
# The target of both lock files (Makefile, LOCK_FLAGS).
TARGET = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def service(name: str) -> dict[str, Any]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return services[name]


def cli_options(argv: list[str]) -> dict[str, str]:
    """The options of ``smr …``, once the CLI itself has parsed the line: ``--help`` makes it
    check that the command and its options exist, without running anything."""
    assert argv[0] == "smr"
    result = CliRunner().invoke(app, [*argv[1:], "--help"])
    assert result.exit_code == 0, f"smr refuses {argv}: {result.output}"
    return {flag: value for flag, value in pairwise(argv) if flag[:2] == "--"}


def probe_port(svc: dict[str, Any], path: str) -> int:
    test = " ".join(svc["healthcheck"]["test"])
    match = re.search(rf"http://127\.0\.0\.1:(\d+){re.escape(path)}\b", test)
    assert match, f"the health check does not probe {path}: {test}"
    return int(match[1])


def test_the_services_are_postgres_the_migration_two_apis_and_two_workers() -> None:
    services = compose()["services"]

    assert set(services) == {"postgres", "migrate", "api", "worker"}
    assert service("api")["deploy"]["replicas"] == 2
    assert service("worker")["deploy"]["replicas"] == 2


@pytest.mark.parametrize("name", ["migrate", "api", "worker"])
def test_every_smr_command_exists_in_the_cli(name: str) -> None:
    cli_options(service(name)["command"])


def test_the_image_default_command_exists_in_the_cli() -> None:
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)

    assert cmd
    assert cli_options(yaml.safe_load(cmd[1]))["--host"] == "0.0.0.0"  # noqa: S104


def test_the_migration_runs_once_on_a_healthy_postgres_before_anything_else() -> None:
    assert service("migrate")["command"] == ["smr", "db", "upgrade"]
    assert service("migrate")["restart"] == "no"
    assert service("migrate")["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "pg_isready" in service("postgres")["healthcheck"]["test"]
    for name in ("api", "worker"):
        depends = service(name)["depends_on"]
        assert depends == {"migrate": {"condition": "service_completed_successfully"}}


def test_the_api_listens_outside_its_container_and_its_readiness_is_probed() -> None:
    api = service("api")
    options = cli_options(api["command"])

    assert options["--host"] == "0.0.0.0"  # noqa: S104
    assert probe_port(api, "/readyz") == int(options["--port"])
    assert api["ports"]
    assert all(str(mapping).endswith(f":{options['--port']}") for mapping in api["ports"])


def test_the_worker_serves_health_on_the_port_its_check_probes() -> None:
    worker = service("worker")
    options = cli_options(worker["command"])

    assert probe_port(worker, "/healthz") == int(options["--health-port"])


@pytest.mark.parametrize("name", ["migrate", "api", "worker"])
def test_smr_runs_on_the_compose_postgres_with_asyncpg(name: str) -> None:
    url = service(name)["environment"]["SMR_DATABASE_URL"]

    assert url.startswith("postgresql+asyncpg://smr:${POSTGRES_PASSWORD:?")
    assert url.endswith("@postgres:5432/smr")


def test_no_secret_is_written_in_the_compose_file() -> None:
    settings = {
        f"{name}.{key}": value
        for name, svc in compose()["services"].items()
        for key, value in svc.get("environment", {}).items()
    }
    secrets = {key: value for key, value in settings.items() if SECRET_KEY.search(key)}

    assert {"api.SMR_ADMIN_TOKENS", "api.SMR_INGEST_TOKENS"} <= set(secrets)
    assert all(REQUIRED_VARIABLE.fullmatch(value) for value in secrets.values()), secrets
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


@pytest.mark.parametrize("name", ["migrate", "api", "worker"])
def test_the_playbooks_are_mounted_read_only_where_the_image_reads_them(name: str) -> None:
    image_dir = re.search(r"SMR_PLAYBOOKS_DIR=(\S+)", (ROOT / "Dockerfile").read_text())

    assert image_dir
    assert any(v.endswith(f":{image_dir[1]}:ro") for v in service(name)["volumes"])


# The lock files.


def pins(lock: str) -> dict[str, str]:
    found = PIN.findall((ROOT / lock).read_text())
    names = [canonicalize_name(name) for name, _, _ in found]
    assert len(names) == len(set(names)), f"{lock} pins a package twice"
    return {canonicalize_name(name): version for name, version, _ in found}


def declared(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [
        d for x in extras for d in project["optional-dependencies"][x]
    ]
    requirements = [Requirement(line) for line in lines]
    return [r for r in requirements if r.marker is None or r.marker.evaluate(TARGET)]


def out_of_date(requirement: Requirement, pinned: dict[str, str]) -> bool:
    version = pinned.get(canonicalize_name(requirement.name))
    return version is None or not requirement.specifier.contains(version, prereleases=True)


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.lock", ()), ("requirements-dev.lock", ("dev", "bench"))],
)
def test_the_lock_pins_every_declared_dependency_at_a_version_it_allows(
    lock: str, extras: tuple[str, ...]
) -> None:
    pinned = pins(lock)
    stale = [str(req) for req in declared(*extras) if out_of_date(req, pinned)]

    assert not stale, f"{lock} is out of date with pyproject.toml ({stale}): run `make lock`"


def test_the_runtime_lock_is_the_dev_lock_s_versions() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")

    assert {name: dev.get(name) for name in runtime} == runtime


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-dev.lock"])
def test_every_pin_carries_its_hashes(lock: str) -> None:
    found = PIN.findall((ROOT / lock).read_text())

    assert found
    assert [f"{name}=={version}" for name, version, hashed in found if not hashed] == []


def test_the_image_installs_the_lock_with_hashes_and_nothing_else() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert "pip install --require-hashes --only-binary=:all: -r requirements.lock" in dockerfile
    assert "pip install --no-deps ." in dockerfile
