"""`crawl.*`: a three-level crawl built from child jobs: a navigation page yields category pages (`ctx.submit_many`),
each category yields product pages, and `crawl.report`, a batch's `then` callback, counts what the tree did.

Load it with `gleaner worker --handlers examples.jobboard.crawl`; submit the crawl as a batch with a callback:

    POST /jobs/batch {"jobs": [{"kind": "crawl.navigation", "payload": {"start_url": "https://shop.example/"}}],
                      "then": {"kind": "crawl.report"}}

The report waits for the navigation job and every job it (and its children) submitted.
"""

from __future__ import annotations

from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

from gleaner import ChildJob, JobContext, JsonInput, Registry, RetryableError

registry = Registry()
URL: dict[str, JsonInput] = {"type": "string", "format": "uri"}
NAVIGATION: dict[str, JsonInput] = {
    "type": "object",
    "required": ["start_url"],
    "properties": {
        "start_url": URL,
        # shows the child key rule: the first attempt fails after submitting this many categories, and the retry
        # submits them all again without creating any twice
        "retry_once_after": {"type": "integer", "minimum": 0},
    },
}
PAGE: dict[str, JsonInput] = {"type": "object", "required": ["url"], "properties": {"url": URL}}


def links(html: str, base_url: str, selector: str) -> list[str]:
    """Pure: the absolute targets of the links matching `selector`, in page order, each once."""
    found: list[str] = []
    for node in LexborHTMLParser(html).css(selector):
        href = node.attributes.get("href")
        if href and urljoin(base_url, href) not in found:
            found.append(urljoin(base_url, href))
    return found


@registry.handler("crawl.navigation", schema=NAVIGATION)
async def navigation(ctx: JobContext) -> JsonInput:
    """Fetch the start page and submit one `crawl.category` job per `a.category` link (keyed by position)."""
    response = await ctx.http.get(str(ctx.job.payload["start_url"]))
    categories = links(response.text(), response.url, "a.category")
    stop = ctx.job.payload.get("retry_once_after")
    if isinstance(stop, int) and ctx.job.attempt == 1:
        await ctx.submit_many([ChildJob("crawl.category", {"url": url}) for url in categories[:stop]])
        raise RetryableError(f"failing on purpose after {stop} categories")
    ids = await ctx.submit_many([ChildJob("crawl.category", {"url": url}) for url in categories])
    return {"categories": len(ids)}


@registry.handler("crawl.category", schema=PAGE)
async def category(ctx: JobContext) -> JsonInput:
    """Fetch a category page and submit one `crawl.product` job per `a.product` link (keyed by its URL)."""
    response = await ctx.http.get(str(ctx.job.payload["url"]))
    products = links(response.text(), response.url, "a.product")
    ids = await ctx.submit_many([ChildJob("crawl.product", {"url": url}, key=url) for url in products])
    return {"products": len(ids)}


@registry.handler("crawl.product", schema=PAGE)
async def product(ctx: JobContext) -> JsonInput:
    """Fetch a product page and store its `.name`."""
    response = await ctx.http.get(str(ctx.job.payload["url"]))
    node = LexborHTMLParser(response.text()).css_first(".name")
    name = node.text(strip=True) if node is not None else None
    await ctx.save_result(response, {"name": name}, keep_body=False)
    return {"name": name}


@registry.handler("crawl.report")
async def report(ctx: JobContext) -> JsonInput:
    """The callback: how many jobs of each crawl kind succeeded, from the counts its payload received."""
    dependencies = ctx.job.payload.get("dependencies")
    kinds = dependencies.get("kinds") if isinstance(dependencies, dict) else None
    counted: dict[str, JsonInput] = {}
    if isinstance(kinds, dict):
        for kind, outcomes in kinds.items():
            counted[kind.removeprefix("crawl.")] = outcomes.get("succeeded", 0) if isinstance(outcomes, dict) else 0
    return {"succeeded": counted, "products": counted.get("product", 0)}
