"""`jobboard.scrape`: walk a job board's pages (following "next" links) and store the job titles of each page.

Load it with `GLEANER_HANDLER_MODULES=examples.jobboard.scraper`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

from gleaner.services.worker.context import JobContext
from gleaner.shared.errors import PermanentError

DEFAULT_TITLE_SELECTOR = ".job-title"
DEFAULT_NEXT_SELECTOR = "a[rel=next]"
DEFAULT_MAX_PAGES = 50


@dataclass(frozen=True, slots=True)
class Page:
    """What one page of the board holds: its job titles and the link to the next page, if any."""

    titles: list[str]
    next_url: str | None


def parse_page(html: str, base_url: str, title_selector: str, next_selector: str) -> Page:
    """Pure parsing: no I/O, so it is tested on a string."""
    tree = LexborHTMLParser(html)
    titles = [node.text(strip=True) for node in tree.css(title_selector)]
    link = tree.css_first(next_selector)
    href = link.attributes.get("href") if link is not None else None
    return Page([t for t in titles if t], urljoin(base_url, href) if href else None)


async def scrape(ctx: JobContext) -> Any:
    """Payload: `start_url` (required), `max_pages` (default 50), `title_selector`, `next_selector`."""
    payload = ctx.job.payload if isinstance(ctx.job.payload, dict) else {}
    url = payload.get("start_url")
    if not isinstance(url, str) or not url:
        raise PermanentError("payload.start_url must be a URL", error_class="bad_payload")
    max_pages = int(payload.get("max_pages", DEFAULT_MAX_PAGES))
    title_selector = str(payload.get("title_selector", DEFAULT_TITLE_SELECTOR))
    next_selector = str(payload.get("next_selector", DEFAULT_NEXT_SELECTOR))
    seen: set[str] = set()
    titles: list[str] = []
    next_url: str | None = url
    while next_url is not None and next_url not in seen and len(seen) < max_pages:
        seen.add(next_url)
        response = await ctx.http.get(next_url)  # polite: the site's limits apply across all workers
        page = parse_page(response.text(), response.url, title_selector, next_selector)
        await ctx.save_result(response, {"titles": page.titles}, keep_body=False)
        titles.extend(page.titles)
        await ctx.progress({"pages": len(seen), "titles": len(titles)})
        next_url = page.next_url
    return {"pages": len(seen), "titles": titles}


def register(registry: Any) -> None:
    registry.add("jobboard.scrape", scrape)
