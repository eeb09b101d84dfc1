"""How a page list ends, and the example plugin's pure parsing."""

from __future__ import annotations

import pytest

from examples.jobboard.scraper import parse_page
from gleaner.services.worker.context import Partial
from gleaner.services.worker.handlers.scrape_pages import PageCounts, page_urls, verdict
from gleaner.shared.errors import PermanentError


def test_all_pages_fetched_succeeds_with_the_counts() -> None:
    assert verdict(PageCounts(10, completed=10), 0.3)["completed"] == 10


def test_a_failed_share_within_the_ratio_is_partial() -> None:
    result = verdict(PageCounts(10, completed=7, failed=3), 0.3)
    assert isinstance(result, Partial)
    assert (result.result["requested"], result.result["completed"], result.result["failed"]) == (10, 7, 3)


def test_a_failed_share_beyond_the_ratio_fails() -> None:
    with pytest.raises(PermanentError) as caught:
        verdict(PageCounts(10, completed=6, failed=4), 0.3)
    assert caught.value.error_class == "too_many_page_failures"


@pytest.mark.parametrize("payload", [{}, {"urls": []}, {"urls": "http://x/"}, {"urls": ["http://x/", ""]}, None])
def test_a_bad_url_list_is_refused(payload: object) -> None:
    with pytest.raises(PermanentError):
        page_urls(payload)


def test_the_job_board_parser_finds_titles_and_the_next_page() -> None:
    html = """<ul><li><h2 class="job-title"> Baker </h2></li><li><h2 class="job-title">Welder</h2></li></ul>
    <nav><a rel="prev" href="/jobs?page=1">back</a><a rel="next" href="/jobs?page=3">more</a></nav>"""
    page = parse_page(html, "http://board.test/jobs?page=2", ".job-title", "a[rel=next]")
    assert page.titles == ["Baker", "Welder"]
    assert page.next_url == "http://board.test/jobs?page=3"


def test_the_last_page_has_no_next_page() -> None:
    assert parse_page("<h2 class=job-title>X</h2>", "http://b/", ".job-title", "a[rel=next]").next_url is None
