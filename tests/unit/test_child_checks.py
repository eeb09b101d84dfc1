"""`ctx.submit` in the worker refuses what the API would: unknown kinds, bad fields, privileged kinds from a plain
parent; and it keys keyless children by position (pure parts of gleaner.services.worker.children)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from gleaner import ChildJob, PermanentError
from gleaner.job_context import JobInfo
from gleaner.services.worker.children import ChildWriter, KindCache
from gleaner.shared.config import Config
from gleaner.shared.kind_rules import KindRules

RULES = KindRules.named({"noop", "crawl.product", "maintenance.prune"})


def writer(parent_kind: str = "crawl.category") -> ChildWriter:
    job = JobInfo(7, parent_kind, "default", 1, 3, {}, None, 60.0)
    config = Config.from_env({})
    return ChildWriter(cast(Any, None), config, KindCache(cast(Any, None), config), job, "w1")


def test_a_child_passes_the_checks_of_an_api_submission() -> None:
    spec = writer()._checked(ChildJob("crawl.product", {"url": "u"}, priority=9, delay_s=5), 0, RULES)
    assert (spec.kind, spec.payload, spec.priority, spec.delay_s) == ("crawl.product", {"url": "u"}, 9, 5)
    with pytest.raises(PermanentError, match=r"jobs\[2\]\.kind: unknown kind 'nope'"):
        writer()._checked(ChildJob("nope"), 2, RULES)
    with pytest.raises(PermanentError, match=r"jobs\[0\]\.priority"):
        writer()._checked(ChildJob("noop", priority=12), 0, RULES)


def test_only_a_privileged_parent_may_submit_a_privileged_child() -> None:
    with pytest.raises(PermanentError, match="needs the `admin` scope"):
        writer()._checked(ChildJob("maintenance.prune"), 0, RULES)
    assert writer("maintenance.prune")._checked(ChildJob("maintenance.prune"), 0, RULES).kind == "maintenance.prune"


def test_keyless_children_are_keyed_by_their_position_and_keys_are_checked() -> None:
    children = writer()
    keys = [children._key(job) for job in (ChildJob("noop"), ChildJob("noop", key="a"), ChildJob("noop"))]
    assert keys == ["#0", "a", "#1"]
    with pytest.raises(PermanentError):
        children._key(ChildJob("noop", key=""))
