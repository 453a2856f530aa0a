"""What the monitoring tests share: the Grafana dashboards and Prometheus rule files as
queries, the metric names a PromQL expression reads, and the metric families the shield-mcp
processes export.

There is no PromQL parser for Python here and Prometheus 2.42 has no parse endpoint, so
names are picked out of an expression by a tokenizer that knows PromQL's lexical shape
(strings, label matchers, ranges, grouping clauses, functions); whether an expression
parses at all is left to `promtool check rules` (see ``promtool_parses``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.tools import REPO

DASHBOARDS = REPO / "grafana" / "dashboards"
RULES = REPO / "prometheus" / "rules"
UNUSED = REPO / "grafana" / "unused_metrics.yml"

# Grafana's variables in a query, as a Prometheus that Grafana is not in front of needs them.
# 1m: four scrape intervals of the test's 1 s scrapes would do; a minute is what
# $__rate_interval comes to with the compose stack's 15 s scrapes.
RATE_INTERVAL = "1m"
GRAFANA_VARIABLES = {
    "${__rate_interval}": RATE_INTERVAL,
    "$__rate_interval": RATE_INTERVAL,
    "${__interval}": RATE_INTERVAL,
    "$__interval": RATE_INTERVAL,
    "${__range}": "1h",
    "$__range": "1h",
}

# Series Prometheus makes itself: alerts and rules may name them, no process exports them.
PROMETHEUS_OWN = frozenset(
    {
        "up",
        "ALERTS",
        "ALERTS_FOR_STATE",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)

_KEYWORDS = frozenset(
    {
        # binary operators and modifiers
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "atan2",
        # aggregations, which may stand before their ``by (...)`` clause
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        # @ modifiers' functions and number literals
        "start",
        "end",
        "inf",
        "nan",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENT = re.compile(r"#[^\n]*")
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def without_strings(expr: str) -> str:
    """The expression with its string literals (label values, regexes) emptied."""
    return _COMMENT.sub(" ", _STRING.sub('""', expr))


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (not functions, keywords or label names)."""
    text = without_strings(expr)
    text = _GROUPING.sub(" ", _RANGE.sub(" ", _MATCHERS.sub(" ", text)))
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call is None and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def expand(expr: str) -> str:
    """A dashboard query with Grafana's interval variables replaced."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


@dataclass(frozen=True)
class Query:
    where: str  # for messages: the dashboard and panel, or the rule file and rule
    expr: str  # ready for Prometheus (Grafana variables replaced)


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard, by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, the panels folded into a collapsed row too."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> list[Query]:
    out = []
    for name, board in dashboards().items():
        for panel in panels(board):
            for target in panel.get("targets", []):
                where = f"{name} panel {panel.get('id')} {panel.get('title')!r} {target['refId']}"
                out.append(Query(where, expand(target["expr"])))
    return out


def rule_files() -> list[Path]:
    return sorted(RULES.glob("*.yml"))


def rules() -> list[tuple[str, dict[str, Any]]]:
    """(file name, rule) for every recording and alerting rule."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in rule_files():
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            out.extend((path.name, rule) for rule in group.get("rules", []))
    return out


def rule_queries(kind: str = "any") -> list[Query]:
    """Rule expressions: ``record`` ones, ``alert`` ones or both (``any``)."""
    out = []
    for file, rule in rules():
        key = "record" if "record" in rule else "alert"
        if kind in ("any", key):
            out.append(Query(f"{file} {key} {rule[key]}", str(rule["expr"])))
    return out


def recorded_names() -> set[str]:
    return {str(rule["record"]) for _, rule in rules() if "record" in rule}


def promtool_parses(promtool: str, queries: list[Query], workdir: Path) -> list[str]:
    """The queries `promtool check rules` cannot parse, with its reasons (empty: all parse).

    Each query becomes a recording rule of a throw-away file: the rule checker parses
    every expression with Prometheus's own parser and reports each one that fails.
    """
    rules = [{"record": f"check:query:{i}", "expr": q.expr} for i, q in enumerate(queries)]
    path = workdir / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    if done.returncode == 0:
        return []
    failures = []
    for line in (done.stdout + done.stderr).splitlines():
        found = re.search(r'"check:query:(\d+)": (.*)', line)
        if found:
            failures.append(f"{queries[int(found.group(1))].where}: {found.group(2)}")
    return failures or [done.stdout + done.stderr]


# The families a process exports: the modules that define metrics (a metric class or a
# collector, from prometheus_client) are imported in a fresh interpreter (what an earlier
# test imported must not count), then the default registry, which holds prometheus_client's
# process/GC/platform collectors too, is read.
_EXPORTED = r"""
import importlib, json, pathlib, re, sys
from prometheus_client import REGISTRY
root = pathlib.Path(sys.argv[1])
defines = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary|Info|Enum)\(|MetricFamily\(|REGISTRY\.register\("
)
for package in sys.argv[2:]:
    for path in sorted((root / package).rglob("*.py")):
        text = path.read_text()
        if "prometheus_client" in text and defines.search(text):
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            importlib.import_module(module.removesuffix(".__init__"))
suffixes = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}
families = {}
for family in REGISTRY.collect():
    name = family.name + ("_total" if family.type == "counter" else "")
    name = name + ("_info" if family.type == "info" else "")
    families[name] = {
        "type": family.type,
        "help": family.documentation,
        "series": [family.name + s for s in suffixes[family.type]],
    }
print(json.dumps(families))
"""
PACKAGES = ("knowledge", "mcp_server", "orchestrator", "orchestrator_client", "shield_common")


@dataclass(frozen=True)
class Family:
    name: str  # as exposed and documented: counters with _total
    type: str
    help: str
    series: tuple[str, ...]  # the sample names it exposes (_bucket, _sum, ...)


@cache
def exported_families() -> dict[str, Family]:
    done = subprocess.run(
        [sys.executable, "-c", _EXPORTED, str(REPO), *PACKAGES],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    raw: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return {name: Family(name, f["type"], f["help"], tuple(f["series"])) for name, f in raw.items()}


def family_of_series() -> dict[str, str]:
    """Sample name (tool_duration_seconds_bucket) -> family (tool_duration_seconds)."""
    return {series: f.name for f in exported_families().values() for series in f.series}


def unused_catalogue() -> dict[str, str]:
    """grafana/unused_metrics.yml: family -> why no dashboard or rule uses it."""
    loaded = yaml.safe_load(UNUSED.read_text()) or {}
    assert isinstance(loaded, dict), f"{UNUSED} must map each family to a reason"
    return {str(k): str(v or "") for k, v in loaded.items()}
