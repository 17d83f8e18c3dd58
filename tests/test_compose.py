"""The production-like stack: docker-compose.yml against the Compose Specification, its commands
against the CLI, and the Dockerfile's shape. No Docker engine is needed (none exists in CI)."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import typer
import yaml
from sqlalchemy.engine import make_url

from bulkops.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROJECT_SERVICES = {"migrate", "temporal-setup", "api", "worker"}
# The Compose Specification's own JSON schema, vendored (with its licence) by check-jsonschema.
SCHEMA = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
# What an operator puts in .env (the stack has no defaults for these).
SECRETS = {
    "POSTGRES_PASSWORD": "pg-admin-secret",
    "BULKOPS_DB_PASSWORD": "app-secret",
    "BULKOPS_METRICS_TOKEN": "scrape-secret",
    "BULKOPS_CONSOLE_SECRET": "console-secret",
}


class Refused(Exception):
    """`docker compose` refuses to start: a `${VAR:?message}` variable is unset or empty."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """What `docker compose` does with `${VAR}`, `${VAR:-default}` and `${VAR:?message}`."""
    if isinstance(value, str):

        def one(m: re.Match[str]) -> str:
            given = env.get(m.group("name"))
            if m.group("op") in (":?", "?") and not given:
                raise Refused(f"{m.group('name')}: {m.group('arg')}")
            return given or (m.group("arg") if m.group("op") in (":-", "-") else "") or ""

        return VAR.sub(one, value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE.read_text()), SECRETS)  # type: ignore[no-any-return]


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_check_would_catch_a_broken_file(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["worker"]["depends_on"]["migrate"]["condition"] = "service_done"
    broken["services"]["api"]["restrat"] = "always"
    assert len(list(jsonschema.Draft202012Validator(schema).iter_errors(broken))) >= 2


def test_stack_has_every_part(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "temporal", "temporal-ui", *PROJECT_SERVICES}
    pg = services["postgres"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    temporal = services["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    env = temporal["environment"]
    assert env["DB"] == "postgres12" and env["POSTGRES_SEEDS"] == "postgres"
    assert temporal["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_project_services_are_one_image_with_ordered_startup(compose: dict[str, Any]) -> None:
    services = compose["services"]
    images = {services[s]["image"] for s in PROJECT_SERVICES}
    assert len(images) == 1
    for name in PROJECT_SERVICES:
        assert services[name]["build"]["dockerfile"] == "Dockerfile"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["temporal-setup"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["temporal-setup"]["condition"] == "service_completed_successfully"
    assert services["api"]["environment"]["BULKOPS_API_HOST"] == "0.0.0.0"


def test_worker_is_scalable(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    # Each of these pins one container and breaks `docker compose up --scale worker=3`.
    for key in ("container_name", "ports", "hostname"):
        assert key not in worker, key
    assert not any(v.get("type") == "bind" for v in worker.get("volumes", []) if isinstance(v, dict))


def test_project_services_only_set_known_settings(compose: dict[str, Any]) -> None:
    aliases = {f.alias for f in Settings.model_fields.values() if f.alias}
    for name in PROJECT_SERVICES:
        env = compose["services"][name]["environment"]
        unknown = {k for k in env if k.startswith(("BULKOPS_", "TEMPORAL_"))} - aliases
        assert not unknown, f"{name}: {unknown} are not Settings aliases"


def _cli_paths() -> set[tuple[str, ...]]:
    from bulkops.cli.app import app

    root = typer.main.get_command(app)
    paths: set[tuple[str, ...]] = set()

    def walk(cmd: click.Command, prefix: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, (*prefix, name))
        else:
            paths.add(prefix)

    walk(root, ())
    return paths


def test_every_service_command_is_a_bulkops_command(compose: dict[str, Any]) -> None:
    paths = _cli_paths()
    scripts = _console_scripts()
    for name in PROJECT_SERVICES:
        command = compose["services"][name]["command"]
        assert isinstance(command, list), f"{name}: use the exec form so no shell sits in between"
        assert command[0] in scripts, f"{name}: {command[0]} is not one of the project's entry points"
        words = tuple(w for w in command[1:] if not w.startswith("-"))
        assert any(words[: len(p)] == p for p in paths), f"{name}: `{' '.join(command)}` is not a command"


def _console_scripts() -> set[str]:
    import tomllib

    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def _stages() -> list[tuple[str, str, list[str]]]:
    """(base image, stage name, instructions) per FROM, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if m:
            stages.append((m.group(1), (m.group(2) or "").lower(), []))
        elif stages:
            stages[-1][2].append(line)
    return stages


def test_dockerfile_is_multistage_and_ships_no_dev_server() -> None:
    stages = {name: (base, body) for base, name, body in _stages()}
    assert {"build", "runtime"} <= set(stages)
    build_body = " ".join(stages["build"][1])
    assert "uv sync --frozen --no-dev" in build_body
    assert "rm -f /app/.venv/bin/temporal" in build_body
    assert "test ! -e /app/.venv/bin/temporal" in build_body
    runtime_base, runtime_body = stages["runtime"]
    assert "slim" in runtime_base or runtime_base == "${PYTHON_IMAGE}"
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in DOCKERFILE.read_text()
    # The runtime stage installs nothing itself: it only copies what the build stage left.
    assert not any(re.search(r"\b(uv|pip)\s+(sync|install)\b", line) for line in runtime_body)
    assert any(line.startswith("COPY --from=build") for line in runtime_body)
    assert _stages()[-1][1] == "runtime", "the last stage is the image `docker build` produces"


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".bulkops", ".git"} <= ignored


# --- a deployment that exposes nothing by default ------------------------------------------------


def _published(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host address, host port) of each published port; no address means every interface."""
    found = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append((port.get("host_ip", "0.0.0.0"), str(port.get("published", ""))))
            continue
        parts = str(port).split(":")
        host_ip = ":".join(parts[:-2]) if len(parts) > 2 else "0.0.0.0"
        found.append((host_ip.strip("[]"), parts[-2] if len(parts) > 1 else ""))
    return found


def test_only_the_api_is_published_on_every_interface(compose: dict[str, Any]) -> None:
    services = compose["services"]
    everywhere = {n for n, s in services.items() for ip, _ in _published(s) if ip in ("0.0.0.0", "::", "")}
    assert everywhere == {"api"}
    assert _published(services["api"]) == [("0.0.0.0", "8000")]
    assert _published(services["temporal-ui"]) == [("127.0.0.1", "8080")]
    for name in ("postgres", "temporal", "migrate", "temporal-setup", "worker"):
        assert "ports" not in services[name], name
    # And the check itself sees through the short syntax.
    assert _published({"ports": ["7233:7233", "[::1]:1:1", {"target": 1, "published": 2}]}) == [
        ("0.0.0.0", "7233"),
        ("::1", "1"),
        ("0.0.0.0", "2"),
    ]


def test_compose_refuses_to_start_without_every_secret() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())
    for missing in SECRETS:
        with pytest.raises(Refused, match=missing):
            interpolate(raw, {k: v for k, v in SECRETS.items() if k != missing})
        with pytest.raises(Refused, match=missing):  # set but empty, as in .env.example
            interpolate(raw, {**SECRETS, missing: ""})
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(example) == set(SECRETS) and not any(example.values())


def test_no_default_password_anywhere() -> None:
    text = COMPOSE.read_text()
    for m in VAR.finditer(text):
        if re.search("PASSWORD|PWD|TOKEN|SECRET|KEY", m.group("name")):
            assert m.group("op") == ":?", f"{m.group(0)} has a default or may be empty"
    assert not re.search(r"(PASSWORD|PWD|TOKEN):\s*[A-Za-z0-9]", text), "a literal secret"


def test_the_app_never_uses_the_superuser(compose: dict[str, Any]) -> None:
    services = compose["services"]
    superuser = services["postgres"]["environment"]["POSTGRES_USER"]
    for name in ("api", "worker", "temporal-setup"):
        url = make_url(services[name]["environment"]["BULKOPS_DATABASE_URL"])
        assert url.username == "bulkops_app" != superuser, name
        assert url.password == SECRETS["BULKOPS_DB_PASSWORD"] and url.database == "bulkops", name
    migrate = services["migrate"]["environment"]
    # Only the migration step is the owner; it creates the app's role with the app's password.
    assert make_url(migrate["BULKOPS_DATABASE_URL"]).username == superuser
    assert migrate["BULKOPS_APP_DB_ROLE"] == "bulkops_app"
    assert migrate["BULKOPS_APP_DB_PASSWORD"] == SECRETS["BULKOPS_DB_PASSWORD"]
    temporal = services["temporal"]["environment"]
    assert set(migrate["BULKOPS_APP_DB_DENY"].split(",")) == {
        temporal["DBNAME"],
        temporal["VISIBILITY_DBNAME"],
    }
    assert services["migrate"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        assert services[name]["environment"]["BULKOPS_METRICS_TOKEN"] == SECRETS["BULKOPS_METRICS_TOKEN"]
    # Every API container signs console sessions with the same secret (the worker has no console).
    assert services["api"]["environment"]["BULKOPS_CONSOLE_SECRET"] == SECRETS["BULKOPS_CONSOLE_SECRET"]
    assert "BULKOPS_CONSOLE_SECRET" not in services["worker"]["environment"]


DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


def test_images_are_pinned_by_digest(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name not in PROJECT_SERVICES:
            assert DIGEST.match(service["image"]), f"{name}: {service['image']}"
    args = dict(re.findall(r"^ARG (\w+_IMAGE)=(\S+)$", DOCKERFILE.read_text(), re.M))
    assert set(args) == {"PYTHON_IMAGE", "UV_IMAGE"}
    for image in args.values():
        assert DIGEST.match(image), image
