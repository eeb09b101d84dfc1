"""One stack (gateway, worker, scheduler) and one Chromium per module: browser tests share them to stay quick.

Chromium is Debian's (`make browser` installs it); Playwright never downloads one. Missing, the tests skip
locally and fail under CI. Screenshots go to GLEANER_TEST_SCREENSHOTS (a folder) or the module's temporary one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from gleaner.shared.config import Config
from tests.support.contract import CheckedTransport
from tests.support.services import (
    ADMIN_TOKEN,
    create_database,
    delete_topology,
    drop_database,
    dsn_for,
    require_services,
    test_env,
    unique,
)
from tests.support.stack import Stack

CHROMIUM = os.environ.get("GLEANER_TEST_CHROMIUM", "/usr/bin/chromium")
T = TypeVar("T")


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from sync code, on a thread of its own: Playwright's sync API keeps an event
    loop running on the test's thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


@dataclass
class Console:
    """The running stack as the browser tests see it: its URL, an admin API client and where screenshots go."""

    url: str
    api: httpx.Client
    stack: Stack
    shots: Path

    def cli(self, *args: str) -> str:
        return run_async(self.stack.run_cli(*args))

    def key(self, scopes: str, name: str = "") -> str:
        """A new API key (`gleaner apikey create` prints it last)."""
        created = self.cli("apikey", "create", "--name", name or unique("browser-"), "--scopes", scopes)
        return created.strip().splitlines()[-1]


def chromium_path() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        message = f"Chromium is not installed at {CHROMIUM} (`make browser` installs Debian's)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must have it")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    require_services()
    name = run_async(create_database())
    env = test_env(dsn_for(name), unique("t"), GLEANER_RABBITMQ_MANAGEMENT_URL="off")
    stack = Stack(env, tmp_path_factory.mktemp("console-stack"))
    shots = Path(os.environ.get("GLEANER_TEST_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        gateway = run_async(stack.start("gateway"))
        run_async(stack.start("worker"))
        run_async(stack.start("scheduler"))
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        # the test's own API answers are checked against the OpenAPI document, as every test's are
        with httpx.Client(
            base_url=f"{gateway.url}/api/v1", headers=headers, timeout=30, transport=CheckedTransport()
        ) as api:
            yield Console(gateway.url, api, stack, shots)
    finally:
        stack.stop_all()
        run_async(delete_topology(Config.from_env(env)))
        run_async(drop_database(name))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    with sync_playwright() as playwright:
        # root (as in CI) cannot use Chromium's sandbox
        chromium = playwright.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, url: str, key: str = ADMIN_TOKEN) -> None:
    page.goto(f"{url}/console/")
    page.fill("#key", key)
    page.click("#sign-in")
    page.wait_for_url(f"{url}/console/")
