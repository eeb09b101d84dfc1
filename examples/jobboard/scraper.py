"""`jobboard.scrape`: walk a job board's pages (following "next" links) and store the job titles of each page.

Load it with `gleaner worker --handlers examples.jobboard.scraper` (or GLEANER_HANDLER_MODULES). It imports only
`gleaner`, and `gleaner.testing` runs it without services (tests/unit/test_jobboard_example.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

from gleaner import JobContext, JsonInput, Registry

DEFAULT_TITLE_SELECTOR = ".job-title"
DEFAULT_NEXT_SELECTOR = "a[rel=next]"
DEFAULT_MAX_PAGES = 50
registry = Registry()
SELECTOR: dict[str, JsonInput] = {"type": "string", "minLength": 1, "maxLength": 200}
SCHEMA: dict[str, JsonInput] = {
    "type": "object",
    "required": ["start_url"],
    "properties": {
        "start_url": {"type": "string", "format": "uri", "description": "the board's first page"},
        "max_pages": {"type": "integer", "minimum": 1, "maximum": 1000},
        "title_selector": SELECTOR,
        "next_selector": SELECTOR,
    },
}


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


@registry.handler("jobboard.scrape", schema=SCHEMA)
async def scrape(ctx: JobContext) -> JsonInput:
    """Walk a job board's pages, storing each page's job titles.

    Payload: `start_url` (required), `max_pages` (default 50), `title_selector`, `next_selector`.
    """
    payload = ctx.job.payload  # checked against SCHEMA before the handler runs
    url = str(payload["start_url"])
    max_pages = payload.get("max_pages", DEFAULT_MAX_PAGES)
    max_pages = max_pages if isinstance(max_pages, int) else DEFAULT_MAX_PAGES
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
