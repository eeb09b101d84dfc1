"""Seed 004's APScheduler-style schedule file applied as the seed writes it, and firing as the seed describes."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import orjson
import yaml

from tests.support.stack import Api, Stack, eventually

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed004_scraper_schedules.yaml"
SCRAPERS = ("--scraper", "B3=noop", "--scraper", "FUNDAMENTUS=noop", "--scraper", "BINANCE=noop")
OPTIONS = ("--timezone", "America/Sao_Paulo", *SCRAPERS)


async def test_the_seed_file_applies_as_written_and_its_converted_form_applies_to_the_same_schedules(
    stack: Stack, tmp_path: Path, db: asyncpg.Connection
) -> None:
    await stack.start("worker")  # registers the kinds the file's jobs are checked against
    applied = await stack.run_cli("schedules", "apply", str(EXAMPLE), *OPTIONS)
    assert "create 7, update 0, disable 0, unchanged 0" in applied, applied
    rows = {r["name"]: r for r in await db.fetch("SELECT * FROM schedules WHERE source = 'file'")}
    custom = rows["my_custom_schedule"]
    assert (custom["cron"], custom["timezone"], custom["description"]) == (
        "30 10 * * 1-5",
        "America/Sao_Paulo",
        "My custom schedule",
    )
    job = orjson.loads(custom["job"])
    assert job["priority"] == 9 and job["fan_out"] == {"key": "ticker", "values": ["PETR4", "VALE3"]}
    assert rows["crypto_updates"]["interval_s"] == 900 and rows["crypto_updates"]["jitter"] == 0
    assert rows["complete_market_scan"]["enabled"] is False and rows["one_time_backfill"]["kind"] == "once"

    converted = await stack.run_cli("schedules", "import", str(EXAMPLE), "--convert", *OPTIONS)
    assert yaml.safe_load(converted)["schedules"][0]["cron"] == "30 10 * * 1-5"
    path = tmp_path / "schedules.yaml"
    path.write_text(converted)
    again = await stack.run_cli("schedules", "apply", str(path))
    assert "create 0, update 0, disable 0, unchanged 7" in again, again

    unknown = await stack.run_cli("schedules", "apply", str(EXAMPLE), check=False)  # B3 → kind "b3": none serves it
    assert "unknown kind 'b3'" in unknown and "schedules[0].job.kind" in unknown


async def test_a_seed_interval_in_seconds_fires_one_job_per_ticker_in_every_slot(
    stack: Stack, tmp_path: Path, db: asyncpg.Connection, api_factory: type[Api]
) -> None:
    api = api_factory((await stack.start("gateway")).url)
    await stack.start("worker")
    await stack.start("scheduler")
    text = EXAMPLE.read_text().replace("minutes: 15", "seconds: 1")  # crypto_updates, every second
    path = tmp_path / "scraper_schedules.yaml"
    path.write_text(text)
    await stack.run_cli("schedules", "apply", str(path), *OPTIONS)

    async def three_slots() -> bool:
        slots = await db.fetchval(
            "SELECT count(DISTINCT j.scheduled_for) FROM jobs j JOIN schedules s ON s.id = j.schedule_id "
            "WHERE s.name = 'crypto_updates' AND j.state = 'succeeded'"
        )
        return bool(slots >= 3)

    await eventually(three_slots, timeout_s=20, interval_s=0.2, what="three slots of crypto_updates to succeed")
    status, _ = await api.request("POST", "/schedules/crypto_updates/pause")
    assert status == 200
    jobs = await db.fetch(
        "SELECT j.scheduled_for, j.payload, j.priority FROM jobs j JOIN schedules s ON s.id = j.schedule_id "
        "WHERE s.name = 'crypto_updates'"
    )
    by_slot: dict[object, list[str]] = {}
    for job in jobs:
        payload = orjson.loads(job["payload"])
        assert job["priority"] == 5 and payload["scraper"] == "BINANCE"
        by_slot.setdefault(job["scheduled_for"], []).append(payload["ticker"])
    assert len(by_slot) >= 3 and all(sorted(t) == ["BTC", "ETH"] for t in by_slot.values()), by_slot
