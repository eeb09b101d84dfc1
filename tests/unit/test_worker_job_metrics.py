"""The worker's metric series: observations made in bulk read exactly as one `observe` per value would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from gleaner.services.worker.job_metrics import observe_many
from gleaner.shared.metrics import DURATION_BUCKETS


def samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for metric in histogram.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def test_observing_many_values_at_once_gives_the_buckets_count_and_sum_of_observing_each() -> None:
    values = [0.0, 0.0004, 0.01, 0.0100001, 0.3, 0.3, 2.5, 1799.0, 1800.0, 4000.0]
    one_by_one = Histogram("one", "one", ["kind"], buckets=DURATION_BUCKETS, registry=CollectorRegistry())
    in_bulk = Histogram("one", "one", ["kind"], buckets=DURATION_BUCKETS, registry=CollectorRegistry())
    for value in values:
        one_by_one.labels("noop").observe(value)
    observe_many(in_bulk.labels("noop"), values)
    observe_many(in_bulk.labels("noop"), [])
    assert samples(in_bulk) == samples(one_by_one)
    assert samples(in_bulk)[("one_count", "")] == len(values)


def test_values_that_share_a_bucket_are_observed_as_observing_each_would() -> None:
    one_by_one = Histogram("one", "one", ["kind"], buckets=DURATION_BUCKETS, registry=CollectorRegistry())
    in_bulk = Histogram("one", "one", ["kind"], buckets=DURATION_BUCKETS, registry=CollectorRegistry())
    lowest = DURATION_BUCKETS[0]
    for values in ([0.0001, 0.0002, lowest], [lowest * 1.5, DURATION_BUCKETS[1]], [4000.0, 5000.0]):
        for value in values:
            one_by_one.labels("noop").observe(value)
        observe_many(in_bulk.labels("noop"), values)
    bulk, each = samples(in_bulk), samples(one_by_one)
    assert bulk.pop(("one_sum", "")) == pytest.approx(each.pop(("one_sum", "")))  # added up in another order
    assert bulk == each
