"""gleaner/shared/grants.py against the code: each service's role holds exactly what the SQL it carries needs."""

from __future__ import annotations

import pytest

from gleaner.shared.grants import GRANTS, OWNER_ONLY, SERVICES
from tests.ops.sql_access import ROOTS, required_privileges, schema_tables


def _granted(service: str) -> dict[str, set[str]]:
    return {table: {p.strip() for p in privileges.split(",")} for table, privileges in GRANTS[service].items()}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_role_holds_exactly_the_privileges_its_sql_needs(service: str) -> None:
    needed, granted = required_privileges(service), _granted(service)
    missing = {t: sorted(p - granted.get(t, set())) for t, p in needed.items() if p - granted.get(t, set())}
    extra = {t: sorted(p - needed.get(t, set())) for t, p in granted.items() if p - needed.get(t, set())}
    assert not missing, f"{service} runs SQL its role may not: grant it in gleaner/shared/grants.py: {missing}"
    assert not extra, (
        f"{service}'s role holds privileges no SQL of it uses: revoke in gleaner/shared/grants.py: {extra}"
    )


def test_the_worker_that_handles_fetched_content_cannot_touch_api_keys() -> None:
    assert "api_keys" not in GRANTS["worker"]
    assert "api_keys" not in required_privileges("worker")


def test_every_table_of_the_schema_is_granted_to_someone_or_kept_for_the_owner() -> None:
    granted = {table for service in SERVICES for table in GRANTS[service]}
    assert schema_tables() - granted == set(), "a table no role may use: grant it, or add it to OWNER_ONLY"
    assert granted <= schema_tables(), granted - schema_tables()
    assert not OWNER_ONLY & schema_tables()  # schema_migrations is created by gleaner/shared/migrate.py itself


def test_the_analysis_sees_each_service_s_code() -> None:
    # a guard against an analysis that finds nothing and so demands nothing
    assert set(ROOTS) == set(SERVICES)
    assert {"api_keys", "jobs"} <= set(required_privileges("gateway"))
    assert {"jobs", "site_slots", "scrape_results"} <= set(required_privileges("worker"))
    assert {"jobs", "schedules", "scheduler_state"} <= set(required_privileges("scheduler"))
