"""`examples/jobboard`'s handler run by `gleaner.testing`: fake pages in, stored titles and progress out."""

from __future__ import annotations

import pytest

from examples.jobboard import scraper
from gleaner.testing import FakeHttp, InvalidPayload, run_job, run_job_sync

BOARD = "https://board.example/jobs"
PAGE_1 = '<h2 class="job-title">Welder</h2><h2 class="job-title">Baker</h2><a rel="next" href="/jobs?page=2">next</a>'
PAGE_2 = '<h2 class="job-title">Pilot</h2>'


async def test_the_scraper_follows_next_links_and_stores_the_titles_of_each_page() -> None:
    http = FakeHttp({BOARD: PAGE_1, f"{BOARD}?page=2": PAGE_2})

    run = await run_job(scraper.registry, "jobboard.scrape", {"start_url": BOARD}, http=http)

    assert run.outcome == "succeeded"
    assert run.result == {"pages": 2, "titles": ["Welder", "Baker", "Pilot"]}
    assert http.requested == [BOARD, f"{BOARD}?page=2"]
    assert [(r.url, r.data, r.keep_body) for r in run.results] == [
        (BOARD, {"titles": ["Welder", "Baker"]}, False),
        (f"{BOARD}?page=2", {"titles": ["Pilot"]}, False),
    ]
    assert run.progress == [{"pages": 1, "titles": 2}, {"pages": 2, "titles": 3}]


def test_max_pages_stops_the_walk() -> None:
    http = FakeHttp({BOARD: PAGE_1, f"{BOARD}?page=2": PAGE_2})
    run = run_job_sync(scraper.registry, "jobboard.scrape", {"start_url": BOARD, "max_pages": 1}, http=http)
    assert run.result == {"pages": 1, "titles": ["Welder", "Baker"]}


def test_a_missing_page_fails_the_job_permanently_and_a_server_error_retries_it() -> None:
    missing = run_job_sync(scraper.registry, "jobboard.scrape", {"start_url": BOARD})
    http = FakeHttp()
    http.add(BOARD, "busy", status=503)
    busy = run_job_sync(scraper.registry, "jobboard.scrape", {"start_url": BOARD}, http=http)
    assert (missing.outcome, busy.outcome) == ("failed", "retrying")


def test_the_payload_is_checked_against_the_kinds_schema_first() -> None:
    with pytest.raises(InvalidPayload) as caught:
        run_job_sync(scraper.registry, "jobboard.scrape", {"start_url": "http://10.0.0.1/", "max_pages": 0})
    assert [path for path, _ in caught.value.problems] == ["max_pages", "start_url"]
