"""`examples/jobboard/crawl.py` run by `gleaner.testing`: the children each level submits, and the report."""

from __future__ import annotations

from examples.jobboard import crawl
from gleaner import ChildJob, JobContext
from gleaner.job_context import JobInfo, job_logger
from gleaner.testing import CapturedChildren, FakeHttp, run_job

SHOP = "https://shop.example/"
NAVIGATION = "".join(f'<a class="category" href="/c/{n}">c{n}</a>' for n in range(3)) + '<a href="/about">x</a>'
CATEGORY = (
    '<a class="product" href="/p/1">1</a><a class="product" href="/p/2">2</a><a class="product" href="/p/1">1</a>'
)


async def test_the_navigation_page_submits_one_category_job_per_link() -> None:
    run = await run_job(crawl.registry, "crawl.navigation", {"start_url": SHOP}, http=FakeHttp({SHOP: NAVIGATION}))
    assert run.outcome == "succeeded"
    assert run.children == [ChildJob("crawl.category", {"url": f"{SHOP}c/{n}"}) for n in range(3)]
    assert run.result == {"categories": 3}


async def test_a_category_submits_each_product_once_keyed_by_its_url() -> None:
    http = FakeHttp({f"{SHOP}c/0": CATEGORY})
    run = await run_job(crawl.registry, "crawl.category", {"url": f"{SHOP}c/0"}, http=http)
    assert [(c.kind, c.key) for c in run.children] == [("crawl.product", f"{SHOP}p/1"), ("crawl.product", f"{SHOP}p/2")]


async def test_a_retried_parent_gets_back_the_children_it_submitted_before() -> None:
    children = CapturedChildren()
    job = JobInfo(1, "crawl.navigation", "default", 1, 3, {"start_url": SHOP}, None, 60.0)
    ctx = JobContext(job=job, log=job_logger(job), children=children)
    first = await ctx.submit_many([ChildJob("crawl.category", {"url": "a"}), ChildJob("crawl.category", {"url": "b"})])
    again = await ctx.submit("crawl.category", {"url": "z"}, key="#0")
    keyed = [await ctx.submit("crawl.product", {"url": "p"}, key="p") for _ in range(2)]
    assert (first, again, keyed) == ([2, 3], 2, [4, 4])
    assert len(children.submitted) == 3


async def test_the_report_counts_the_products_of_its_payload() -> None:
    kinds = {"crawl.navigation": {"succeeded": 1}, "crawl.product": {"succeeded": 99, "failed": 1}}
    run = await run_job(crawl.registry, "crawl.report", {"dependencies": {"kinds": kinds}})
    assert run.result == {"succeeded": {"navigation": 1, "product": 99}, "products": 99}
