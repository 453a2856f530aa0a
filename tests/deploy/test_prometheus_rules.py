"""prometheus/ and alertmanager/ checked by the tools that run them: promtool (config, rules,
the rules' unit tests in prometheus/tests/) and amtool (config, routing); and the
conventions the tools do not check: every alert unit-tested firing and quiet, annotated, its
runbook link landing on a section of docs/RUNBOOK.md; recording rules named
level:metric:operations; the SLO windows of one SLO sharing one expression."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import REPO, require_tool

PROMETHEUS = REPO / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
ALERTMANAGER = REPO / "alertmanager" / "alertmanager.yml"
RUNBOOK = REPO / "docs" / "RUNBOOK.md"
# The repository pyproject.toml declares: the runbook links point into it.
REPOSITORY = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
RUNBOOK_URL = REPOSITORY + "/blob/main/docs/RUNBOOK.md#"
# Sloth's windows: the multiwindow alerts' six, plus 5m for the current burn rate.
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# The long window of each burn-rate condition -> the fewest events it may fire on
# (prometheus/rules/slo_alerts.yml explains the numbers).
MINIMUM_EVENTS = {"1h": 20, "6h": 40, "1d": 70, "3d": 210}
# severity -> the Alertmanager receiver it must reach
RECEIVERS = {"page": "pager", "ticket": "ticket"}


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=120)


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _rules() -> Iterator[dict[str, Any]]:
    for path in RULE_FILES:
        for group in _load(path)["groups"]:
            yield from group["rules"]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _recordings() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "record" in rule]


def _alert_tests() -> Iterator[dict[str, Any]]:
    for path in TEST_FILES:
        for group in _load(path)["tests"]:
            yield from group.get("alert_rule_test", [])


@cache
def _runbook_anchors() -> frozenset[str]:
    """GitHub's anchors for the runbook's headings: lowercase, punctuation dropped, spaces
    to hyphens."""
    anchors = set()
    in_code = False
    for line in RUNBOOK.read_text().splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code  # a shell comment in a code block is no heading
        heading = re.match(r"#{1,6}\s+(.+)", line)
        if heading and not in_code:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return frozenset(anchors)


def test_the_files_are_there() -> None:
    # Guards the tests below against passing on an empty glob.
    assert {p.name for p in RULE_FILES} >= {
        "slo_recording.yml",
        "slo_alerts.yml",
        "ops_alerts.yml",
    }
    assert TEST_FILES
    assert _alerts() and _recordings()


# promtool


def test_promtool_checks_the_config_with_its_rules_and_token_files(tmp_path: Path) -> None:
    """The config as compose mounts it: prometheus.yml beside rules/ and the token files.
    Without a token file the same check fails: promtool does read the paths."""
    promtool = require_tool("promtool")
    shutil.copy(PROMETHEUS / "prometheus.yml", tmp_path)
    shutil.copytree(PROMETHEUS / "rules", tmp_path / "rules")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    credential_files = [
        scrape["authorization"]["credentials_file"]
        for scrape in _load(PROMETHEUS / "prometheus.yml")["scrape_configs"]
        if "authorization" in scrape
    ]
    assert credential_files, "the shield jobs send bearer tokens"
    for name in set(credential_files):
        (tmp_path / name).write_text("token\n")

    checked = _run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for rule_file in RULE_FILES:  # the rule_files glob found each of them
        assert f"rules/{rule_file.name}" in checked.stdout + checked.stderr

    (tmp_path / credential_files[0]).unlink()
    missing = _run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert missing.returncode != 0
    assert credential_files[0] in missing.stdout + missing.stderr


def test_promtool_checks_the_rules() -> None:
    promtool = require_tool("promtool")
    result = _run(promtool, "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def unit_test_runs() -> Iterator[dict[Path, subprocess.Popen[str]]]:
    """`promtool test rules` of every test file, all started at once: each is one CPU-bound
    process of several seconds, so on two cores they finish sooner side by side."""
    promtool = require_tool("promtool")
    runs = {
        path: subprocess.Popen(
            [promtool, "test", "rules", path.name],
            cwd=path.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path in TEST_FILES
    }
    yield runs
    for run in runs.values():
        if run.poll() is None:
            run.kill()
        run.communicate()


# promtool evaluates days of synthetic samples per file (~8 s together): out of the quick loop.
@pytest.mark.slow
@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(
    test_file: Path, unit_test_runs: dict[Path, subprocess.Popen[str]]
) -> None:
    output, _ = unit_test_runs[test_file].communicate(timeout=300)
    assert unit_test_runs[test_file].returncode == 0, output
    assert "SUCCESS" in output


def test_every_rule_file_is_loaded_by_a_unit_test() -> None:
    loaded = {
        (path.parent / name).resolve() for path in TEST_FILES for name in _load(path)["rule_files"]
    }
    assert {p.resolve() for p in RULE_FILES} <= loaded


def test_every_alert_is_unit_tested_firing_at_each_severity_and_staying_quiet() -> None:
    """For each alert rule (an alert name can have one rule per severity): a unit test where
    it fires with that severity, and one where it must not fire at all."""
    fired: set[tuple[str, str]] = set()
    quiet: set[str] = set()
    for case in _alert_tests():
        expected = case.get("exp_alerts") or []
        if not expected:
            quiet.add(case["alertname"])
        for alert in expected:
            fired.add((case["alertname"], alert["exp_labels"]["severity"]))
    rules = {(rule["alert"], rule["labels"]["severity"]) for rule in _alerts()}
    assert rules - fired == set(), "alerts never seen firing in prometheus/tests"
    assert {name for name, _ in rules} - quiet == set(), "alerts never checked to stay quiet"


# Alerts: labels, annotations, runbook


@pytest.mark.parametrize("rule", _alerts(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_every_alert_has_a_severity_annotations_and_a_runbook_section(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in RECEIVERS
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    # The description says what was measured, not only that something is wrong.
    assert re.search(r"\$value|\$labels", annotations["description"])
    url = annotations["runbook_url"]
    assert url == RUNBOOK_URL + rule["alert"].lower()
    assert url.removeprefix(RUNBOOK_URL) in _runbook_anchors()


def test_runbook_links_point_into_the_repository_pyproject_declares() -> None:
    assert REPOSITORY.startswith("https://github.com/")
    urls = [rule["annotations"]["runbook_url"] for rule in _alerts()]
    assert urls
    assert [url for url in urls if not url.startswith(RUNBOOK_URL)] == []


def test_the_runbook_has_no_section_for_an_alert_that_does_not_exist() -> None:
    sections = set(re.findall(r"^## (Shield\w+)$", RUNBOOK.read_text(), re.MULTILINE))
    assert sections == {rule["alert"] for rule in _alerts()}


def test_every_runbook_link_inside_the_runbook_lands_on_a_heading() -> None:
    links = re.findall(r"\]\(#([^)]+)\)", RUNBOOK.read_text())
    assert links
    assert set(links) - _runbook_anchors() == set()


# Recording rules


@pytest.mark.parametrize("rule", _recordings(), ids=lambda r: r["record"])
def test_recording_rules_are_named_level_metric_operations(rule: dict[str, Any]) -> None:
    assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"])


def _slo_rules() -> dict[str, list[dict[str, Any]]]:
    by_slo: dict[str, list[dict[str, Any]]] = {}
    for rule in _recordings():
        if rule["record"].startswith("slo:"):
            by_slo.setdefault(rule["labels"]["sloth_id"], []).append(rule)
    return by_slo


def test_each_slo_has_every_window_and_its_budget_figures() -> None:
    slos = _slo_rules()
    assert len(slos) == 4
    for sloth_id, rules in slos.items():
        labels = rules[0]["labels"]
        assert labels["sloth_service"] == "shield-mcp"
        assert sloth_id == f"shield-mcp-{labels['sloth_slo']}"
        names = {rule["record"] for rule in rules}
        windows = {f"slo:sli_error:ratio_rate{window}" for window in SLO_WINDOWS}
        assert windows <= names, sloth_id
        assert {
            "slo:objective:ratio",
            "slo:error_budget:ratio",
            "slo:current_burn_rate:ratio",
            "slo:period_error_budget_remaining:ratio",
        } <= names, sloth_id


def test_the_windows_of_one_slo_differ_only_in_the_window() -> None:
    for sloth_id, rules in _slo_rules().items():
        shapes = set()
        for window in SLO_WINDOWS:
            (rule,) = (r for r in rules if r["record"] == f"slo:sli_error:ratio_rate{window}")
            assert rule["labels"]["sloth_window"] == window
            assert f"[{window}]" in rule["expr"]
            shapes.add(rule["expr"].replace(f"[{window}]", "[WINDOW]"))
        assert len(shapes) == 1, f"{sloth_id}: the windows' expressions disagree"


def test_the_event_counts_of_one_slo_differ_only_in_the_window() -> None:
    """slo:sli_events:increase<window> for each long window, and for the 5 minutes the
    30-day figures sum: one expression per SLO."""
    for sloth_id, rules in _slo_rules().items():
        shapes = set()
        for window in ("5m", *MINIMUM_EVENTS):
            (rule,) = (r for r in rules if r["record"] == f"slo:sli_events:increase{window}")
            assert rule["labels"]["sloth_window"] == window
            assert f"[{window}]" in rule["expr"]
            shapes.add(rule["expr"].replace(f"[{window}]", "[WINDOW]"))
        assert len(shapes) == 1, f"{sloth_id}: the event counts disagree"


def test_every_burn_rate_condition_needs_a_minimum_of_events_in_its_long_window() -> None:
    alerts = [r for r in _alerts() if r["alert"].startswith("ShieldSLOBurnRate")]
    assert len(alerts) == 2
    conditions = [c for r in alerts for c in r["expr"].split("\nor\n")]
    assert len(conditions) == 4
    for condition in conditions:
        windows = re.findall(r"slo:sli_error:ratio_rate(\w+) /", condition)
        long_window = max(windows, key=lambda w: SLO_WINDOWS.index(w))
        minimum = f"(slo:sli_events:increase{long_window} >= {MINIMUM_EVENTS[long_window]})"
        assert minimum in condition, condition


def test_the_30_day_figures_are_evaluated_every_5_minutes_from_event_counts() -> None:
    """Each 5-minute count is summed once over 30 days only if its group runs every 5
    minutes; the ratio divides sums of events, weighting each call once."""
    period_records = {
        "slo:sli_events:increase5m",
        "slo:sli_bad_events:increase5m",
        "slo:sli_error:ratio_rate30d",
        "slo:period_error_budget_remaining:ratio",
    }
    found = [
        (group.get("interval"), rule["record"], rule["labels"]["sloth_id"])
        for path in RULE_FILES
        for group in _load(path)["groups"]
        for rule in group["rules"]
        if rule.get("record") in period_records
    ]
    assert len(found) == len(period_records) * len(_slo_rules())
    assert [f for f in found if f[0] != "5m"] == []
    for rule in _recordings():
        if rule["record"] == "slo:sli_error:ratio_rate30d":
            assert "sum_over_time(slo:sli_bad_events:increase5m" in rule["expr"]
            assert "sum_over_time(slo:sli_events:increase5m" in rule["expr"]


def _constant(expr: str) -> float:
    number = re.fullmatch(r"vector\((.+)\)", expr.strip())
    assert number is not None, expr
    return float(number.group(1))


def test_the_error_budget_is_one_minus_the_objective() -> None:
    for sloth_id, rules in _slo_rules().items():
        value = {rule["record"]: rule["expr"] for rule in rules}
        objective = _constant(value["slo:objective:ratio"])
        assert 0.9 <= objective < 1, sloth_id
        budget = _constant(value["slo:error_budget:ratio"])
        assert budget == pytest.approx(1 - objective), sloth_id


def test_every_shield_scrape_job_is_covered_by_the_scrape_alerts() -> None:
    jobs = [
        scrape["job_name"]
        for scrape in _load(PROMETHEUS / "prometheus.yml")["scrape_configs"]
        if scrape["job_name"].startswith("shield-")
    ]
    assert jobs
    absent = next(rule["expr"] for rule in _alerts() if rule["alert"] == "ShieldMetricsAbsent")
    down = " ".join(rule["expr"] for rule in _alerts() if rule["alert"] == "ShieldTargetDown")
    for job in jobs:
        assert f'absent(up{{job="{job}"}})' in absent
        assert f'absent(shield_build_info{{job="{job}"}})' in absent
        assert job in down


# Alertmanager


def test_amtool_checks_the_alertmanager_config() -> None:
    amtool = require_tool("amtool")
    result = _run(amtool, "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _route(amtool: str, *labels: str) -> str:
    result = _run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_every_alert_reaches_the_receiver_of_its_severity() -> None:
    amtool = require_tool("amtool")
    for name, severity in sorted({(r["alert"], r["labels"]["severity"]) for r in _alerts()}):
        routed = _route(amtool, f"alertname={name}", f"severity={severity}")
        assert routed == RECEIVERS[severity], (name, severity)


def test_an_alert_without_a_known_severity_still_reaches_someone() -> None:
    amtool = require_tool("amtool")
    assert _route(amtool, "alertname=SomethingElse") == "ticket"
    assert _route(amtool, "alertname=SomethingElse", "severity=critical") == "ticket"


def test_inhibit_rules_name_real_alerts_and_labels_they_carry() -> None:
    """amtool cannot test inhibition offline. At least: every alert an inhibit rule names
    exists, and each label it compares is on both alerts as they fire in the unit tests
    (a label on neither would make every source inhibit every target)."""
    fired_labels: dict[str, set[str]] = {}
    for case in _alert_tests():
        for alert in case.get("exp_alerts") or []:
            fired_labels.setdefault(case["alertname"], set()).update(alert["exp_labels"])
    config = _load(ALERTMANAGER)
    assert config["inhibit_rules"]
    for inhibit in config["inhibit_rules"]:
        for side in ("source_matchers", "target_matchers"):
            (matcher,) = inhibit[side]
            name = re.fullmatch(r'alertname="(\w+)"', matcher)
            assert name is not None, matcher
            assert name.group(1) in {rule["alert"] for rule in _alerts()}, matcher
            assert set(inhibit["equal"]) <= fired_labels[name.group(1)], matcher
