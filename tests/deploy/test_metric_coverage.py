"""Dashboards, rules and the processes' metrics agree (the check the LiteLLM project keeps
for its own metrics): every metric a dashboard or a rule names is exported by a shield-mcp
process, and every family a process exports is charted, alerted on, or listed in
grafana/unused_metrics.yml with the reason.

"What the processes export" is the default prometheus_client registry after importing every
module that defines metrics, in a fresh interpreter (tests/deploy/monitoring.py); the live
test (test_live_prometheus.py) checks that nothing a real process serves is missing from it.
"""

from __future__ import annotations

from tests.deploy.monitoring import (
    PROMETHEUS_OWN,
    Query,
    dashboard_queries,
    exported_families,
    family_of_series,
    metric_names,
    recorded_names,
    rule_files,
    rule_queries,
    unused_catalogue,
)


def all_queries() -> list[Query]:
    return dashboard_queries() + rule_queries()


def used_families() -> set[str]:
    series = family_of_series()
    return {series[name] for q in all_queries() for name in metric_names(q.expr) if name in series}


def test_rules_and_dashboards_are_there_to_check() -> None:
    assert rule_files(), "prometheus/rules/*.yml is missing"
    assert len(dashboard_queries()) > 50 and len(rule_queries("record")) > 10


def test_every_metric_a_dashboard_or_rule_names_is_exported_or_recorded() -> None:
    known = set(family_of_series()) | recorded_names() | PROMETHEUS_OWN
    unknown = sorted(
        f"{q.where}: {name}" for q in all_queries() for name in metric_names(q.expr) - known
    )
    assert unknown == []


def test_every_exported_family_is_charted_alerted_on_or_listed_as_unused() -> None:
    unused = unused_catalogue()
    neglected = sorted(set(exported_families()) - used_families() - set(unused))
    assert neglected == [], "chart or alert on these, or list them in grafana/unused_metrics.yml"


def test_the_unused_list_is_exact_and_gives_reasons() -> None:
    unused = unused_catalogue()
    assert sorted(set(unused) - set(exported_families())) == [], "no longer exported"
    assert sorted(set(unused) & used_families()) == [], "charted or alerted on after all"
    assert [name for name, reason in unused.items() if len(reason.split()) < 5] == []


def test_the_contract_s_families_are_exported() -> None:
    """The names docs/MONITORING.md and the dashboards are built on, by type."""
    families = {name: f.type for name, f in exported_families().items()}
    expected = {
        "tool_calls_total": "counter",
        "tool_errors_total": "counter",
        "tool_duration_seconds": "histogram",
        "mcp_server_operation_duration_seconds": "histogram",
        "embedding_duration_seconds": "histogram",
        "embedding_batch_size": "histogram",
        "embedding_query_cache_total": "counter",
        "vector_store_operation_duration_seconds": "histogram",
        "vector_store_operation_errors_total": "counter",
        "circuit_breaker_state": "gauge",
        "dependency_up": "gauge",
        "shield_build_info": "gauge",
        "api_requests_total": "counter",
        "api_duration_seconds": "histogram",
        "jobs_total": "counter",
        "job_failures_total": "counter",
        "job_duration_seconds": "histogram",
        "job_stage_duration_seconds": "histogram",
        "worker_queue_size": "gauge",
        "active_jobs": "gauge",
        "oldest_queued_job_age_seconds": "gauge",
        "lightrag_operations_total": "counter",
        "lightrag_operation_duration_seconds": "histogram",
    }
    assert {name: families.get(name) for name in expected} == expected


def test_metric_names_are_read_from_promql() -> None:
    """The tokenizer the checks above rely on finds the selectors and nothing else."""
    expr = (
        'histogram_quantile(0.95, sum by (le, tool) (rate(tool_duration_seconds_bucket{le="1.0",'
        'tool=~"a|b"}[5m]))) / on (sloth_id) group_left () max by (sloth_id) '
        "(slo:error_budget:ratio) or vector(0) > 1e3 unless absent(up offset 5m) and bool count"
    )
    assert metric_names(expr) == {"tool_duration_seconds_bucket", "slo:error_budget:ratio", "up"}
    assert metric_names('label_replace(x, "dst", "$1", "src", "(.*)")') == {"x"}
    assert metric_names("sum without (instance) (jobs_total) * 2") == {"jobs_total"}
