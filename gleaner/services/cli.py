"""The `gleaner` command: run a service, migrate the database, manage API keys and schedule files, and operate
the system through the gateway (jobs, dead letters, sites, stats, health, cleanup)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from collections.abc import Sequence

import asyncpg

from gleaner.services.operator import commands as operator_commands
from gleaner.services.operator.tables import Column, field, table
from gleaner.shared import grants
from gleaner.shared import logging as gleaner_logging
from gleaner.shared.config import Config
from gleaner.shared.errors import ConfigError, GleanerError, StartupError
from gleaner.shared.provision import provision
from gleaner.shared.scheduling.definitions import TemplateCheck
from gleaner.shared.startup import database_error

KEY_COLUMNS: list[Column] = [
    ("ID", field("id")),
    ("NAME", field("name")),
    ("SCOPES", lambda key: ",".join(key["scopes"])),
    ("CREATED", field("created_at")),
    ("REVOKED", field("revoked_at")),
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gleaner", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("gateway", help="serve the HTTP API")
    worker = commands.add_parser("worker", help="consume queues and run jobs")
    worker.add_argument(
        "--handlers",
        action="append",
        default=[],
        metavar="MODULES",
        help="comma-separated handler modules to load besides GLEANER_HANDLER_MODULES (found from the current "
        "directory too, as Celery's -A), e.g. examples.jobboard.scraper",
    )
    operator_commands.add_scheduler_actions(
        commands.add_parser(
            "scheduler", help="fire schedules, relay unpublished jobs, reap leases, prune; or status|pause|resume|run"
        )
    )
    migrate = commands.add_parser("migrate", help="apply pending database migrations (and grants, topology)")
    migrate.add_argument(
        "--grant",
        action="append",
        default=[],
        type=grants.role_assignment,
        metavar="SERVICE=ROLE",
        help="after migrating, leave ROLE exactly the privileges SERVICE needs (gateway, worker, scheduler)",
    )
    migrate.add_argument("--topology", action="store_true", help="also declare the RabbitMQ exchanges and queues")
    apikey = commands.add_parser("apikey", help="manage API keys (in PostgreSQL directly)").add_subparsers(
        dest="action", required=True
    )
    create = apikey.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated: jobs:read,jobs:write,admin")
    apikey.add_parser("list", help="every key: id, name, scopes, created, revoked (never the key itself)")
    revoke = apikey.add_parser("revoke", help="revoke a key; every gateway refuses it within a second")
    revoke.add_argument("id", type=int, help="the key's id (gleaner apikey list)")
    schedules = commands.add_parser("schedules", help="manage schedules").add_subparsers(dest="action", required=True)
    for action in ("apply", "import"):
        _schedule_file_parser(schedules, action)
    operator_commands.add_schedule_list(schedules)
    operator_commands.add_parsers(commands)
    return parser


def _schedule_file_parser(schedules: argparse._SubParsersAction[argparse.ArgumentParser], action: str) -> None:
    help_text = "make the file-managed schedules match a YAML file (Gleaner's format or seed 004's APScheduler one)"
    apply = schedules.add_parser(action, help=help_text if action == "apply" else "the same as apply")
    apply.add_argument("file", help="e.g. examples/schedules.yaml or examples/seed004_scraper_schedules.yaml")
    apply.add_argument("--dry-run", action="store_true", help="show what would change and change nothing")
    apply.add_argument(
        "--convert",
        action="store_true",
        help="print the file in Gleaner's format (stdout) and the diff against it (stderr); change nothing",
    )
    apply.add_argument(
        "--timezone", default="UTC", help="seed format: the IANA timezone of cron entries and dates (default UTC)"
    )
    apply.add_argument(
        "--scraper",
        action="append",
        default=[],
        type=_scraper_kind,
        metavar="SCRAPER=KIND",
        help="seed format: the job kind that runs SCRAPER (default: the scraper's name in lower case)",
    )


def _scraper_kind(value: str) -> tuple[str, str]:
    scraper, sep, kind = value.partition("=")
    if not sep or not scraper or not kind:
        raise argparse.ArgumentTypeError(f"{value!r} is not SCRAPER=KIND, e.g. B3=scrape.b3")
    return scraper, kind


# PostgreSQL's answers to a wrong GLEANER_DATABASE_URL: a missing database, a refused login
DATABASE_MISTAKES = (
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = Config.from_env(os.environ)
    except ConfigError as exc:
        print(f"gleaner: {exc}", file=sys.stderr)
        return 2
    gleaner_logging.setup(args.command, config.log_level)
    try:
        return _dispatch(args, config)
    except ConfigError as exc:  # a setting refused by the command itself (the gateway's sample-token check)
        print(f"gleaner: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:  # a first-start mistake (no database, not migrated, port in use): its fix
        print(f"gleaner {args.command}: {exc}", file=sys.stderr)
        return 2
    except DATABASE_MISTAKES as exc:  # the commands that read PostgreSQL directly (apikey, schedules apply)
        print(f"gleaner {args.command}: {database_error(exc, config.database_url)}", file=sys.stderr)
        return 2
    except GleanerError as exc:
        print(f"gleaner: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, config: Config) -> int:
    if args.command == "migrate":
        print("\n".join(asyncio.run(provision(config, roles=dict(args.grant), topology=args.topology))))
        return 0
    if args.command == "apikey":
        return _apikey(config, args)
    if (args.command, getattr(args, "action", None)) in operator_commands.COMMANDS:
        return operator_commands.run(args, config)
    if args.command == "schedules":
        return _apply_schedules(config, args)
    if args.command == "gateway":
        from gleaner.services.gateway.app import main as run_gateway

        run_gateway(config)
    elif args.command == "worker":
        from gleaner.services.worker.app import main as run_worker

        modules = [name.strip() for value in args.handlers for name in value.split(",") if name.strip()]
        run_worker(dataclasses.replace(config, handler_modules=(*config.handler_modules, *modules)))
    elif args.command == "scheduler":
        from gleaner.services.scheduler.app import main as run_scheduler

        run_scheduler(config)
    return 0


def _apikey(config: Config, args: argparse.Namespace) -> int:
    from gleaner.services.gateway import api_keys

    if args.action == "create":
        name, scopes = args.name.strip(), api_keys.parse_scopes(args.scopes)
        if not name:
            raise GleanerError("--name must not be empty")
        key = api_keys.create(config, name, scopes)
        print(f"created API key {name!r} with scopes {','.join(scopes)}; it is shown only once:")
        print(key)
    elif args.action == "list":
        rows = api_keys.with_connection(config, lambda c: c.fetch(api_keys.LIST))
        print(table([api_keys.key_view(r) for r in rows], KEY_COLUMNS))
    else:
        row = api_keys.with_connection(config, lambda c: api_keys.revoke(c, args.id))
        if row is None:
            raise GleanerError(f"no API key with id {args.id} (see gleaner apikey list)")
        print(f"revoked API key {row['id']} ({row['name']!r}); every gateway refuses it within a second")
    return 0


def _apply_schedules(config: Config, args: argparse.Namespace) -> int:
    from gleaner.services.scheduler.schedule_file import SeedOptions, apply_cli, convert_cli
    from gleaner.shared.kind_table import read_rules
    from gleaner.shared.submission import template_check
    from gleaner.shared.urlguard import Policy

    seed = SeedOptions(args.timezone, dict(args.scraper))
    if args.convert:
        return convert_cli(args.file, seed)

    # job templates are checked as the gateway checks them: the kinds workers registered (the database, no handler
    # code), configured queues, payloads (URLs, maintenance bounds); privileged kinds are allowed: whoever may run
    # this command may write the database
    async def check_of(connection: asyncpg.Connection) -> TemplateCheck:
        rules = await read_rules(connection, config.queues, Policy.configured(config.fetch_allow_private))
        return template_check(config, rules)

    return apply_cli(config, args.file, check_of, dry_run=args.dry_run, seed=seed)


if __name__ == "__main__":
    sys.exit(main())
