"""Writing a site policy: the one upsert the gateway's site API and `gleaner schedules apply` share."""

from __future__ import annotations

from dataclasses import fields

from gleaner.shared.site_rules import SitePolicy

POLICY_FIELDS = tuple(f.name for f in fields(SitePolicy))

# Create or replace the policy; the live limiter state and the counters of an existing site are kept.
UPSERT_SITE = f"""
INSERT INTO sites (name, {", ".join(POLICY_FIELDS)})
VALUES ($1, {", ".join(f"${n}" for n in range(2, len(POLICY_FIELDS) + 2))})
ON CONFLICT (name) DO UPDATE SET {", ".join(f"{f} = EXCLUDED.{f}" for f in POLICY_FIELDS)}, updated_at = now()
RETURNING (xmax = 0) AS created
"""
