"""The public handler API: a registry of kinds, the typed sample module run by `gleaner.testing`, and the layering
that keeps handler code out of the gateway."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gleaner import JobContext, JobInfo, JsonInput, Registry
from gleaner.job_context import job_logger
from gleaner.services.worker.handlers import ServedKinds, load_registry
from gleaner.shared.config import Config
from gleaner.shared.errors import PermanentError
from gleaner.testing import FakeHttp, InvalidPayload, run_job, run_job_sync
from tests.typing import sample_handler_user as sample


def test_the_sample_module_runs_with_fake_pages_and_records_results_and_progress() -> None:
    run = sample.check_sizes()
    assert (run.outcome, run.result) == ("succeeded", {"sizes": {"https://a.example/": 4, "https://b.example/": 5}})
    assert [r.data for r in run.results] == [{"size": 4}, {"size": 5}]
    assert run.progress == [{"done": 1, "of": 2}, {"done": 2, "of": 2}]


async def test_a_page_that_fails_makes_the_job_partial_and_all_failing_makes_it_retry() -> None:
    assert await sample.check_partial() == "partial"
    run = await run_job(sample.registry, "sample.sizes", {"urls": ["https://gone.example/"]}, attempt=3)
    assert (run.outcome, str(run.error)) == ("failed", "every page failed")


def test_a_payload_failing_the_schema_names_the_member_as_the_gateway_would() -> None:
    with pytest.raises(InvalidPayload) as caught:
        run_job_sync(sample.registry, "sample.sizes", {"urls": ["https://a.example/", "ftp://b.example/"]})
    assert [path for path, _ in caught.value.problems] == ["urls[1]"]


def test_a_kind_registered_twice_or_with_a_schema_that_is_none_is_refused() -> None:
    registry = Registry()

    async def handler(ctx: JobContext) -> JsonInput:
        return None

    registry.add("a", handler)
    with pytest.raises(ValueError, match="twice"):
        registry.add("a", handler)
    with pytest.raises(ValueError, match="schema is invalid"):
        registry.add("b", handler, schema={"type": "no-such-type"})


def test_the_description_defaults_to_the_first_line_of_the_docstring_and_flags_are_kept() -> None:
    spec = sample.registry.get("sample.count_rows")
    assert (spec.description, spec.privileged, spec.queue) == (
        "Counts jobs (a handler reading the database).",
        True,
        None,
    )


async def test_the_worker_checks_the_payload_against_the_schema_before_the_handler_runs() -> None:
    served = ServedKinds(sample.registry)
    job = JobInfo(1, "sample.sizes", "default", 1, 1, {"urls": []}, None, 5.0)
    http = FakeHttp()
    with pytest.raises(PermanentError) as caught:
        await served.get("sample.sizes")(JobContext(job=job, log=job_logger(job), http=http))
    assert caught.value.error_class == "bad_payload" and "payload.urls" in str(caught.value)
    assert http.requested == []


def test_every_built_in_kind_is_served_with_the_maintenance_kinds_and_webhook_deliveries_privileged() -> None:
    served = load_registry(Config())
    privileged = {spec.name for spec in served if spec.privileged}
    assert {"noop", "sleep", "fail", "http.fetch", "scrape.pages", "webhook.deliver"} <= set(served.kinds)
    maintenance = {k for k in served.kinds if k.startswith("maintenance.")}
    assert maintenance != set() and privileged == maintenance | {"webhook.deliver"}


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [("gleaner", "gleaner.services"), ("gleaner.services.gateway.app", "gleaner.services.worker")],
)
def test_importing_a_module_loads_nothing_of_what_it_must_not_know(module: str, forbidden: str) -> None:
    code = f"import sys, {module}; print([m for m in sys.modules if m.startswith({forbidden!r})])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
