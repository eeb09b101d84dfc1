"""The scheduler's effective settings, as `GET /scheduler/config` shows them (pure).

The leader records them when it takes over (they come from its own environment); until a leader has, the gateway
shows its own, which are the same where every service shares one configuration.
"""

from __future__ import annotations

from typing import Any

from gleaner.shared.config import Config
from gleaner.shared.scheduling import definitions
from gleaner.shared.scheduling.scheduler_status import FIRE_INTERVAL_S, STALE_TICK_S, STANDBY_RETRY_S, TICK_S


def effective(config: Config) -> dict[str, Any]:
    return {
        "fire_interval_s": FIRE_INTERVAL_S,
        "leader_tick_s": TICK_S,
        "leader_stale_s": STALE_TICK_S,
        "standby_retry_s": STANDBY_RETRY_S,
        "relay_interval_s": config.relay_interval_s,
        "relay_grace_s": config.relay_grace_s,
        "relay_stale_s": config.relay_stale_s,
        "reaper_interval_s": config.reaper_interval_s,
        "lease_s": config.lease_s,
        "prune_interval_s": config.prune_interval_s,
        "prune_batch": config.prune_batch,
        "prune_pause_ratio": config.prune_pause_ratio,
        "prune_budget_s": config.prune_budget_s,
        "retention_days": config.retention_days,
        "result_retention_days": config.result_retention_days,
        "misfire_default": definitions.DEFAULT_MISFIRE,
        "misfire_grace_s_default": definitions.DEFAULT_GRACE_S,
        "overlap_default": definitions.DEFAULT_OVERLAP,
        "jitter_default": definitions.DEFAULT_JITTER,
        "cron_timezone_default": definitions.DEFAULT_TIMEZONE,
        "clock": "database",
    }


def view(settings: dict[str, Any], *, recorded_by: str | None, recorded_at: str | None) -> dict[str, Any]:
    """The answer: whose settings they are (`leader` with its name and when it recorded them, or `gateway`)."""
    source = {"source": "leader" if recorded_by is not None else "gateway", "leader": recorded_by}
    return source | {"recorded_at": recorded_at} | settings
