"""The report's shape from the statistics groups and the failed attempts of the window (pure)."""

from __future__ import annotations

from typing import Any

from gleaner.shared.stats.report import shape
from gleaner.shared.stats.rules import empty_group


def group(site: str | None, kind: str, **states: int) -> dict[str, Any]:
    base = empty_group(site, kind)
    base["states"] |= states
    base["jobs"] = sum(base["states"].values())
    return base


def test_each_group_gets_its_five_top_error_classes_and_its_failed_jobs_as_dead_letters() -> None:
    groups = [group("b3", "scrape", succeeded=5, failed=2), group(None, "noop", succeeded=1)]
    errors = [{"site": "b3", "kind": "scrape", "error_class": f"E{n}", "attempts": n} for n in range(1, 8)]
    errors.append({"site": "b3", "kind": "scrape", "error_class": "A7", "attempts": 7})  # ties by name
    report = shape(groups, errors, [{"reason": "undecodable", "messages": 2}])
    scrape = report["groups"][0]
    assert [e["error_class"] for e in scrape["error_classes"]] == ["A7", "E7", "E6", "E5", "E4"]
    assert scrape["dead_letters"] == 2 and report["groups"][1]["error_classes"] == []
    assert report["dead_letters"] == {"failed_jobs": 2, "messages": {"undecodable": 2}}
    assert len(report["error_classes"]) == 8 and report["error_classes"][0] == {"error_class": "A7", "attempts": 7}
    assert set(scrape) == {
        "site",
        "kind",
        "jobs",
        "states",
        "success_rate",
        "duration_s",
        "error_classes",
        "dead_letters",
    }


def test_a_group_without_jobs_in_the_window_is_left_out_unless_it_has_errors() -> None:
    groups = [group("x", "fetch"), group("y", "fetch")]
    report = shape(groups, [{"site": "y", "kind": "fetch", "error_class": "Timeout", "attempts": 1}], [])
    assert [(g["site"], g["kind"]) for g in report["groups"]] == [("y", "fetch")]
