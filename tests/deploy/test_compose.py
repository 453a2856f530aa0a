"""docker-compose.yml: valid for compose, wired as the processes and Prometheus expect.

No Docker engine runs here. The file is checked against the compose-spec schema by
check-jsonschema, and against what the code reads (the settings classes), what Prometheus
scrapes (prometheus/prometheus.yml), what Grafana is provisioned with and what is in the repo.
"""

from __future__ import annotations

import glob
import re
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.stack import (
    COMPOSE,
    PROCESS_SETTINGS,
    compose,
    container_to_repo,
    env_names,
    environment,
    interpolations,
    is_one_shot,
    listening_ports,
    mounts,
    secret_targets,
    services,
    setting_classes,
    shield_services,
    strings,
    substitute,
)
from tests.deploy.tools import REPO, require_tool

PROMETHEUS_YML = REPO / "prometheus" / "prometheus.yml"
GRAFANA = REPO / "grafana" / "provisioning"
# The contract's scrape jobs -> the compose service each scrapes and the token it sends.
JOBS = {
    "shield-mcp-server": ("mcp-server", "SHIELD_MCP_TOKEN"),
    "shield-orchestrator": ("orchestrator", "SHIELD_ORCHESTRATOR_TOKEN"),
    "shield-worker": ("worker", "SHIELD_ORCHESTRATOR_TOKEN"),
}
SECRET_WORDS = ("PASSWORD", "TOKEN", "API_KEY", "SECRET")


def check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool("check-jsonschema")
    return subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_compose_file_is_valid_against_the_compose_spec() -> None:
    result = check_compose_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_refuses_a_broken_compose_file(tmp_path: Path) -> None:
    """The check above can fail: a misspelt healthcheck key is refused."""
    broken = compose() | {"services": dict(services())}
    broken["services"]["redis"] = services()["redis"] | {"healthcheck": {"tset": ["CMD", "x"]}}
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = check_compose_schema(path)
    assert result.returncode != 0
    assert "tset" in result.stdout + result.stderr


def test_the_stack_has_the_services_of_the_design() -> None:
    expected = {"qdrant", "ollama", "ollama-pull", "redis", "postgres", "orchestrator", "worker"}
    assert expected | {"mcp-server"} <= set(services())
    assert shield_services() == {
        "orchestrator": "orchestrator",
        "worker": "worker",
        "mcp-server": "serve",
    }
    for name in ("prometheus", "alertmanager", "grafana"):
        assert services()[name].get("profiles") == ["monitoring"], name
    for name in expected | {"mcp-server"}:
        assert not services()[name].get("profiles"), f"{name} must start without a profile"


def test_every_depends_on_target_exists_and_is_started_with_it() -> None:
    for name, service in services().items():
        needs = service.get("depends_on") or {}
        assert isinstance(needs, dict), f"{name}: depends_on with conditions"
        for target, spec in needs.items():
            assert target in services(), f"{name} depends on {target}, which is not a service"
            # Compose refuses a dependency that a profile leaves out when this one runs.
            assert set(services()[target].get("profiles") or []) <= set(
                service.get("profiles") or []
            ), f"{name} depends on {target} of another profile"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services()[target], f"{name} waits for {target}'s health"
            elif condition == "service_completed_successfully":
                assert is_one_shot(services()[target]), f"{target} is not a one-shot service"
            else:
                pytest.fail(f"{name} -> {target}: wait for health or completion, not {condition}")


def test_every_long_running_service_has_a_healthcheck_and_one_shots_do_not_restart() -> None:
    one_shots = [name for name, service in services().items() if is_one_shot(service)]
    assert one_shots == ["ollama-pull"]
    for name, service in services().items():
        if name in one_shots:
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name
        assert service.get("restart") == "unless-stopped", name


def test_the_models_ollama_pull_pulls_are_the_ones_the_processes_use() -> None:
    pull = environment(services()["ollama-pull"])
    script = " ".join(services()["ollama-pull"]["command"])
    for name in shield_services():
        env = environment(services()[name])
        for variable in ("SHIELD_EMBEDDER", "SHIELD_EMBED_MODEL", "SHIELD_LLM", "SHIELD_LLM_MODEL"):
            assert env[variable] == pull[variable], f"{name}: {variable}"
    assert '"$$SHIELD_EMBED_MODEL"' in script and '"$$SHIELD_LLM_MODEL"' in script
    assert pull["OLLAMA_HOST"] == environment(services()["mcp-server"])["SHIELD_OLLAMA_HOST"]


def test_every_shield_variable_a_service_sets_is_a_real_setting() -> None:
    settings = setting_classes()
    for name, service in services().items():
        for variable in environment(service):
            if variable.startswith("SHIELD_"):
                assert variable in settings, f"{name} sets {variable}, which no setting reads"


def test_every_setting_reaches_the_process_that_reads_it() -> None:
    """A setting in .env reaches each shield-mcp service: set by compose, or passed through."""
    for name, subcommand in shield_services().items():
        env = environment(services()[name])
        missing = env_names(PROCESS_SETTINGS[subcommand]) - set(env)
        assert missing == set(), f"{name} does not pass {sorted(missing)}"


def test_the_shield_services_are_wired_to_the_stack() -> None:
    for name in shield_services():
        env = environment(services()[name])
        for variable, target in (
            ("SHIELD_QDRANT_URL", "qdrant"),
            ("SHIELD_OLLAMA_HOST", "ollama"),
        ):
            url = urlsplit(str(env[variable]))
            assert url.hostname == target and url.port in listening_ports_of(target), name
    for name in ("orchestrator", "worker"):
        env = environment(services()[name])
        assert urlsplit(str(env["SHIELD_QUEUE_URL"])).hostname == "redis"
        database = urlsplit(substitute(str(env["SHIELD_DATABASE_URL"])))
        assert database.hostname == "postgres" and database.port in listening_ports_of("postgres")
        # Every process that reads documents sees the ingest roots.
        root = PurePosixPath(str(env["SHIELD_INGEST_ROOTS"]))
        assert root in {m.target for m in mounts(services()[name])}, name
    server = environment(services()["mcp-server"])
    url = urlsplit(str(server["SHIELD_ORCHESTRATOR_URL"]))
    assert url.hostname == "orchestrator" and url.port in listening_ports("orchestrator")


def listening_ports_of(name: str) -> set[int]:
    """The default ports of the images compose runs unchanged."""
    defaults = {"qdrant": {6333}, "ollama": {11434}, "redis": {6379}, "postgres": {5432}}
    return defaults[name] | listening_ports(name)


def test_each_shield_healthcheck_probes_the_port_its_process_listens_on() -> None:
    for name in shield_services():
        test = " ".join(services()[name]["healthcheck"]["test"])
        url = urlsplit(test.split("'")[1])
        assert url.path == "/health" and url.port in listening_ports(name), name
        code = services()[name]["healthcheck"]["test"][-1]
        compile(code, f"{name} healthcheck", "exec")


def test_required_secrets_must_be_set_and_none_is_written_in_the_file() -> None:
    """A password or token comes from the shell or .env and compose stops without it."""
    required = set()
    for name, service in services().items():
        for variable, value in environment(service).items():
            if not any(word in variable for word in SECRET_WORDS):
                continue
            if value is None:  # optional, passed through (an API key for a remote service)
                continue
            found = interpolations(value)
            assert found and all(i.operator == ":?" and i.argument for i in found), (
                f"{name}: {variable} must be ${{VAR:?message}}"
            )
            required |= {i.name for i in found}
    # Secrets hidden inside another value (the database URL) are required the same way.
    for text in strings(compose()):
        for one in interpolations(text):
            if any(word in one.name for word in SECRET_WORDS):
                assert one.operator == ":?", f"{one.name} is not required in {text!r}"
    assert {"POSTGRES_PASSWORD", "SHIELD_MCP_TOKEN", "SHIELD_ORCHESTRATOR_TOKEN"} <= required


def test_exposed_processes_are_given_their_token() -> None:
    """A shield-mcp process bound beyond loopback refuses to start without its token."""
    for name, subcommand in shield_services().items():
        env = environment(services()[name])
        token = "SHIELD_MCP_TOKEN" if subcommand == "serve" else "SHIELD_ORCHESTRATOR_TOKEN"
        assert env.get(token), f"{name} binds 0.0.0.0 and needs {token}"


def test_mounted_paths_exist_in_the_repo() -> None:
    binds = [(n, m) for n, s in services().items() for m in mounts(s) if m.is_bind]
    assert binds, "the monitoring services mount the repo's configuration"
    for name, mount in binds:
        assert mount.repo_path.exists(), f"{name} mounts {mount.source}, which is not there"
        assert REPO in mount.repo_path.parents, f"{name} mounts {mount.source} outside the repo"
        assert mount.read_only, f"{name} mounts {mount.source} writable"
    named = {m.source for s in services().values() for m in mounts(s) if not m.is_bind}
    assert named == set(compose()["volumes"]), "every named volume is declared and used"


def prometheus_config() -> dict[str, Any]:
    assert PROMETHEUS_YML.exists(), "prometheus/prometheus.yml (the monitoring profile's config)"
    data = yaml.safe_load(PROMETHEUS_YML.read_text())
    assert isinstance(data, dict)
    return data


def prometheus_config_dir() -> PurePosixPath:
    command = services()["prometheus"]["command"]
    flag = next(arg for arg in command if arg.startswith("--config.file="))
    return PurePosixPath(flag.split("=", 1)[1]).parent


def in_prometheus(path: str) -> PurePosixPath:
    """A path of prometheus.yml as Prometheus resolves it: relative to the config file."""
    return prometheus_config_dir() / path if not path.startswith("/") else PurePosixPath(path)


def test_prometheus_scrapes_the_compose_services_on_their_ports() -> None:
    config = prometheus_config()
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(JOBS) <= set(jobs)
    for job in jobs.values():
        for static in job.get("static_configs") or []:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                service = "prometheus" if host == "localhost" else host
                assert service in services(), f"{job['job_name']} scrapes {host}"
                assert int(port) in listening_ports(service), f"{job['job_name']}: {target}"
        for sd in job.get("dns_sd_configs") or []:
            assert sd.get("type", "SRV") == "A" and sd["port"], job["job_name"]
            for host in sd["names"]:
                assert host in services(), f"{job['job_name']} resolves {host}"
                assert int(sd["port"]) in listening_ports(host), job["job_name"]
    for job_name, (service, _token) in JOBS.items():
        job = jobs[job_name]
        hosts = [t.rsplit(":", 1)[0] for s in job.get("static_configs") or [] for t in s["targets"]]
        hosts += [h for sd in job.get("dns_sd_configs") or [] for h in sd["names"]]
        assert hosts == [service], job_name
    for am in config["alerting"]["alertmanagers"]:
        for static in am["static_configs"]:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                assert int(port) in listening_ports(host), target


def test_prometheus_reads_each_token_from_the_secret_of_its_variable() -> None:
    jobs = {job["job_name"]: job for job in prometheus_config()["scrape_configs"]}
    prometheus = services()["prometheus"]
    mounted = secret_targets(prometheus)
    for job_name, (_service, variable) in JOBS.items():
        path = in_prometheus(jobs[job_name]["authorization"]["credentials_file"])
        assert path in mounted, f"{job_name} reads {path}, where no secret is mounted"
        assert compose()["secrets"][mounted[path]] == {"environment": variable}, job_name
        # Mounted inside a read-only bind mount, compose could not write the secret there.
        assert container_to_repo(prometheus, path) is None, f"{path} is inside a bind mount"


def test_prometheus_finds_its_rule_files_through_the_mounts() -> None:
    prometheus = services()["prometheus"]
    config_file = PurePosixPath(
        next(a for a in prometheus["command"] if a.startswith("--config.file=")).split("=", 1)[1]
    )
    assert container_to_repo(prometheus, config_file) == PROMETHEUS_YML.resolve()
    patterns = prometheus_config()["rule_files"]
    assert patterns
    for pattern in patterns:
        repo_pattern = container_to_repo(prometheus, in_prometheus(pattern))
        assert repo_pattern is not None, f"{pattern} is not mounted"
        assert glob.glob(str(repo_pattern)), f"{pattern} matches no file in the repo"


def test_grafana_is_provisioned_with_the_compose_prometheus_and_the_mounted_dashboards() -> None:
    grafana = services()["grafana"]
    for path in sorted((GRAFANA / "datasources").glob("*.yml")):
        for source in yaml.safe_load(path.read_text())["datasources"]:
            url = urlsplit(source["url"])
            assert url.hostname in services(), f"{path.name}: {source['url']}"
            assert url.port in listening_ports(str(url.hostname)), f"{path.name}: {source['url']}"
    providers = [
        p
        for path in sorted((GRAFANA / "dashboards").glob("*.yml"))
        for p in yaml.safe_load(path.read_text())["providers"]
    ]
    assert providers
    for provider in providers:
        repo_dir = container_to_repo(grafana, PurePosixPath(provider["options"]["path"]))
        assert repo_dir is not None and any(repo_dir.glob("*.json")), provider["name"]
    provisioning = container_to_repo(grafana, PurePosixPath("/etc/grafana/provisioning"))
    assert provisioning == GRAFANA.resolve()


def test_alertmanager_reads_the_repo_config() -> None:
    alertmanager = services()["alertmanager"]
    flag = next(a for a in alertmanager["command"] if a.startswith("--config.file="))
    path = container_to_repo(alertmanager, PurePosixPath(flag.split("=", 1)[1]))
    assert path == (REPO / "alertmanager" / "alertmanager.yml").resolve()
    assert path.is_file()


def test_the_deployment_guide_matches_the_compose_file() -> None:
    """docs/DEPLOYMENT.md names every service, published port and its links resolve."""
    guide = REPO / "docs" / "DEPLOYMENT.md"
    text = guide.read_text()
    for name, service in services().items():
        assert f"| `{name}` |" in text, f"{name} is not in the services table"
        for entry in service.get("ports") or []:
            published = str(entry).rsplit(":", 1)[0]
            assert f"`{published}`" in text, f"{name} publishes {published}"
    grace = services()["worker"]["stop_grace_period"]
    assert f"stop_grace_period: {grace}" in text
    retention = next(
        a for a in services()["prometheus"]["command"] if "retention.time=" in a
    ).split("=", 1)[1]
    assert f"{retention.removesuffix('d')} days of retention" in text
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (guide.parent / target).exists(), f"link to {target}"
