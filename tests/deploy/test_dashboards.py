"""The Grafana dashboards and provisioning: valid, linted, every query parses.

No Grafana server can run here; what a Grafana would reject or render wrong is checked from
the JSON (the rules Grafana's dashboard linter applies), and every query is parsed by
Prometheus's own parser through `promtool`. tests/deploy/test_live_prometheus.py runs the
queries against a Prometheus scraping a real stack.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.monitoring import (
    DASHBOARDS,
    dashboard_queries,
    dashboards,
    expand,
    panels,
    promtool_parses,
    without_strings,
)
from tests.deploy.tools import REPO, require_tool

UIDS = {
    "shield-mcp-tools",
    "shield-orchestrator-api",
    "shield-jobs",
    "shield-dependencies",
    "shield-slo",
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_TYPES = {"timeseries", "stat", "state-timeline", "table", "bargauge", "gauge", "text"}
# The job store's view, exported alike by every orchestrator and worker process: summing it
# over processes would count each job once per process.
STORE_GAUGES = ("worker_queue_size", "active_jobs", "oldest_queued_job_age_seconds")
MAX_BEFORE = re.compile(r"max\s*(?:by\s*\([^)]*\)\s*)?\(\s*$")
RANGE = re.compile(r"\[([^\]]*)\]")
HISTOGRAM_QUANTILE = re.compile(r"histogram_quantile\s*\(")
BY_LE = re.compile(r"\bby\s*\(([^)]*\ble\b[^)]*)\)")


def every_panel() -> list[tuple[str, dict[str, Any]]]:
    return [(name, panel) for name, board in dashboards().items() for panel in panels(board)]


def test_the_five_dashboards_are_there_with_their_uids() -> None:
    boards = dashboards()
    assert {board["uid"] for board in boards.values()} == UIDS
    for name, board in boards.items():
        assert name == f"{board['uid']}.json"
        assert board["title"] and board["description"]
        assert board["schemaVersion"] >= 39, name
        assert board.get("id") is None, f"{name}: a provisioned dashboard has no database id"


def test_each_dashboard_has_a_templated_prometheus_datasource() -> None:
    for name, board in dashboards().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert variables["datasource"]["query"] == "prometheus", name


def test_every_panel_and_target_uses_the_datasource_variable() -> None:
    wrong = []
    for name, panel in every_panel():
        if panel["type"] == "row":
            continue
        if panel.get("datasource") != DATASOURCE:
            wrong.append(f"{name} panel {panel['id']}: {panel.get('datasource')}")
        assert panel.get("targets"), f"{name} panel {panel['id']} has no query"
        for target in panel["targets"]:
            if target.get("datasource") != DATASOURCE:
                wrong.append(f"{name} panel {panel['id']} {target['refId']}")
    assert wrong == []


def test_every_panel_has_a_unit_a_description_and_a_known_type() -> None:
    missing = []
    for name, panel in every_panel():
        if panel["type"] == "row":
            continue
        where = f"{name} panel {panel['id']} {panel.get('title')!r}"
        if panel["type"] not in PANEL_TYPES:
            missing.append(f"{where}: type {panel['type']}")
        if not panel.get("title"):
            missing.append(f"{where}: title")
        if not str(panel.get("description", "")).strip():
            missing.append(f"{where}: description")
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            missing.append(f"{where}: fieldConfig.defaults.unit")
    assert missing == []


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    for name, board in dashboards().items():
        ids = [panel["id"] for panel in panels(board)]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        assert all(isinstance(i, int) for i in ids), name
        cells: dict[tuple[int, int], int] = {}
        for panel in panels(board):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, f"{name} panel {panel['id']} wider than the grid"
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    other = cells.setdefault((x, y), panel["id"])
                    assert other == panel["id"], f"{name}: panels {other} and {panel['id']} overlap"


def test_ref_ids_are_unique_within_a_panel() -> None:
    for name, panel in every_panel():
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), f"{name} panel {panel['id']}"


def test_rates_use_the_rate_interval_and_nothing_else_fixes_a_window() -> None:
    """$__rate_interval follows the scrape interval and the zoom; a fixed [5m] would show
    nothing with slow scrapes and be jagged when zoomed out. SLO windows come from the
    recording rules, so no dashboard needs a range of its own."""
    fixed = []
    for name, panel in every_panel():
        for target in panel.get("targets", []):
            for window in RANGE.findall(without_strings(target["expr"])):
                if window != "$__rate_interval":
                    fixed.append(f"{name} panel {panel['id']} {target['refId']}: [{window}]")
    assert fixed == []
    rates = [q for q in dashboard_queries() if "rate(" in q.expr or "increase(" in q.expr]
    assert len(rates) > 30  # the queries were read


def test_job_store_gauges_are_aggregated_with_max() -> None:
    summed = []
    for name, panel in every_panel():
        for target in panel.get("targets", []):
            expr = target["expr"]
            for gauge in STORE_GAUGES:
                for found in re.finditer(rf"\b{gauge}\b", expr):
                    if not MAX_BEFORE.search(expr[: found.start()]):
                        summed.append(f"{name} panel {panel['id']}: {expr}")
    assert summed == []


def test_histogram_quantiles_keep_the_le_label() -> None:
    wrong = []
    for name, panel in every_panel():
        for target in panel.get("targets", []):
            expr = target["expr"]
            if len(HISTOGRAM_QUANTILE.findall(expr)) > len(BY_LE.findall(expr)):
                wrong.append(f"{name} panel {panel['id']}: {expr}")
    assert wrong == []


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    queries = dashboard_queries()
    assert all("$" not in q.expr for q in queries), "a Grafana variable was left in a query"
    assert promtool_parses(promtool, queries, tmp_path) == []


def test_a_broken_query_is_reported_with_its_panel(tmp_path: Path) -> None:
    """The parse check above can fail: promtool's verdict is mapped back to the panel."""
    promtool = require_tool("promtool")
    good, *_ = dashboard_queries()
    broken = type(good)("shield-x.json panel 9 'Broken' A", expand("sum(rate(x[$__rate_interval])"))
    failures = promtool_parses(promtool, [good, broken], tmp_path)
    assert len(failures) == 1 and failures[0].startswith("shield-x.json panel 9"), failures


def test_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    provisioning = REPO / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    # Matches prometheus/prometheus.yml, so $__rate_interval spans four scrapes.
    scrape = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    assert source["jsonData"]["timeInterval"] == scrape["global"]["scrape_interval"]
    providers = yaml.safe_load((provisioning / "dashboards" / "shield.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert DASHBOARDS == REPO / "grafana" / "dashboards"
