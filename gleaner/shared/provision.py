"""`gleaner migrate`: the schema, then each service role's grants, then the RabbitMQ topology, as asked."""

from __future__ import annotations

from collections.abc import Mapping

import aio_pika
import asyncpg

from gleaner.shared.amqp import Topology, declare, declared_names
from gleaner.shared.config import Config
from gleaner.shared.grants import apply_grants
from gleaner.shared.migrate import migrate
from gleaner.shared.startup import database_error


async def provision(config: Config, *, roles: Mapping[str, str], topology: bool) -> list[str]:
    """Migrate the database, grant `roles` (service → role) and declare the topology; what was done, as lines."""
    try:
        applied = await migrate(config.database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        explained = database_error(exc, config.database_url)
        if explained is None:
            raise
        raise explained from None
    done = [f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "")]
    if roles:
        await grant(config.database_url, roles)
        done.append("granted " + ", ".join(f"{service} to {role}" for service, role in roles.items()))
    if topology:
        exchanges, queues = await declare_topology(config)
        done.append(f"declared {exchanges} exchanges and {queues} queues in RabbitMQ")
    return done


async def grant(dsn: str, roles: Mapping[str, str]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await apply_grants(connection, roles)
    finally:
        await connection.close()


async def declare_topology(config: Config) -> tuple[int, int]:
    """Declare every exchange, queue and binding (as a user allowed to configure them); their counts."""
    connection = await aio_pika.connect(config.amqp_url, client_properties={"connection_name": "gleaner-migrate"})
    try:
        topology = Topology.from_config(config)
        await declare(await connection.channel(), topology)
    finally:
        await connection.close()
    exchanges, queues = declared_names(topology)
    return len(exchanges), len(queues)
