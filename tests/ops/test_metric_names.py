"""The metric-name checker itself: it finds names, and the pending list stays honest."""

from __future__ import annotations

from tests.ops.promql import gleaner_names, metric_names, pending_names, unknown_names, variable_metric_names


def test_metric_names_are_found_inside_functions_aggregations_and_binary_operators() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, queue) (rate(gleaner_job_queue_wait_seconds_bucket{queue=~"$queue"}'
        '[$__rate_interval]))) / on (queue) group_left max(gleaner_jobs{state="queued"}) offset 5m'
        ' > 1e3 and on () (count(up{job="gleaner-worker"} == 1) or vector(0)) == 0'
    )
    assert metric_names(expr) == {"gleaner_job_queue_wait_seconds_bucket", "gleaner_jobs", "up"}


def test_label_names_strings_and_grafana_variables_are_not_taken_for_metrics() -> None:
    expr = 'sum without (instance) (rate(x_total{route=~"/api/v1/jobs.*", code="5.."}[${__rate_interval}]))'
    assert metric_names(expr) == {"x_total"}


def test_a_grafana_label_values_query_names_its_metric() -> None:
    assert variable_metric_names("label_values(gleaner_jobs_enqueued_total, queue)") == {"gleaner_jobs_enqueued_total"}


def test_a_misspelled_metric_name_is_unknown() -> None:
    assert unknown_names({"gleaner_jobs_completed_total", "gleaner_job_completed_total"}) == {
        "gleaner_job_completed_total"
    }


def test_counters_histograms_and_info_are_known_by_their_sample_names() -> None:
    names = gleaner_names()
    assert {"gleaner_jobs_completed_total", "gleaner_job_duration_seconds_bucket", "gleaner_build_info"} <= names
    assert "gleaner_jobs_completed" not in names


def test_no_pending_metric_is_already_exported_so_the_list_only_holds_what_is_missing() -> None:
    exported = set(pending_names()) & gleaner_names()
    assert not exported, (
        f"now exported by gleaner/shared/metrics.py, remove from deploy/metrics-pending.txt: {exported}"
    )


def test_every_pending_metric_names_the_issue_that_adds_it() -> None:
    assert all("issue" in note for note in pending_names().values()), pending_names()
