"""`python -m handover.admin`: manage agent accounts and damage-report cases.

    python -m handover.admin add-agent --username alina --password '…' --name "Alina Berger" \\
        [--role agent|supervisor] [--skills buergerbuero,bauamt] [--capacity 3]
    python -m handover.admin list-agents
    python -m handover.admin remove-agent --username alina
    python -m handover.admin case-status MM-2026-000001 in_bearbeitung [--note "…"]
    python -m handover.admin export-person|erase-person|audit-log|deletion-records …
        (data protection: handover/privacy/admin.py, docs/data-protection.md)
    python -m handover.admin telegram-webhook --url https://gateway.example/channels/telegram
        (tells Telegram where to deliver updates, with TELEGRAM_WEBHOOK_SECRET)

Uses the same Redis as the gateway (REDIS_URL, or the embedded one of `make run`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiohttp
from redis.exceptions import ConnectionError as RedisConnectionError

from handover.agents.directory import AgentDirectory, AgentInputError
from handover.cases.store import STATUSES, CaseBook, normalise_case_number
from handover.channels.base import SendFailed
from handover.channels.telegram import TelegramChannel
from handover.ops.redis_connection import connect
from handover.privacy import admin as privacy_admin
from handover.settings import get_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m handover.admin", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-agent", help="create or replace an agent account")
    add.add_argument("--username", required=True)
    add.add_argument("--password", required=True)
    add.add_argument("--name", required=True, help="display name citizens see")
    add.add_argument("--role", default="agent", choices=["agent", "supervisor"])
    add.add_argument("--skills", default="", help="comma-separated queues, e.g. buergerbuero,kfz")
    add.add_argument("--capacity", type=int, default=3, help="concurrent chats")
    commands.add_parser("list-agents", help="show all agent accounts")
    remove = commands.add_parser("remove-agent", help="delete an agent account")
    remove.add_argument("--username", required=True)
    case = commands.add_parser("case-status", help="change a damage report's status")
    case.add_argument("case_number", help="e.g. MM-2026-000001")
    case.add_argument("status", choices=STATUSES)
    case.add_argument("--note", default=None, help="shown to the citizen in the history")
    webhook = commands.add_parser(
        "telegram-webhook", help="register the gateway's webhook with Telegram (setWebhook)"
    )
    webhook.add_argument("--url", required=True, help="public HTTPS URL of /channels/telegram")
    privacy_admin.add_commands(commands)
    return parser


async def _set_telegram_webhook(url: str) -> int:
    settings = get_settings()
    missing = TelegramChannel.missing(settings)
    if missing:
        print(f"Set {', '.join(missing)} first.", file=sys.stderr)
        return 2
    channel = TelegramChannel.from_settings(settings)
    async with aiohttp.ClientSession() as http:
        channel.http = http
        try:
            await channel.set_webhook(url)
        except (SendFailed, aiohttp.ClientError, TimeoutError) as exc:
            # Telegram's description only: the request URL holds the bot token.
            print(f"Telegram refused: {getattr(exc, 'reason', type(exc).__name__)}",
                  file=sys.stderr)  # fmt: skip
            return 1
    print(f"Telegram delivers updates to {url}.")
    return 0


async def _run(args: argparse.Namespace) -> int:
    if args.command == "telegram-webhook":
        return await _set_telegram_webhook(args.url)
    settings = get_settings()
    redis = connect(settings)
    directory = AgentDirectory(redis)
    try:
        if args.command in privacy_admin.COMMANDS:
            return await privacy_admin.run(args, redis, settings)
        if args.command == "add-agent":
            skills = [s.strip() for s in args.skills.split(",") if s.strip()]
            agent = await directory.save(
                username=args.username, password=args.password, name=args.name,
                role=args.role, skills=skills, capacity=args.capacity,
            )  # fmt: skip
            saved_skills = ",".join(agent.skills) or "-"
            print(
                f"Saved agent {agent.username} ({agent.name}, {agent.role}, "
                f"skills: {saved_skills}, capacity {agent.capacity})."
            )
        elif args.command == "list-agents":
            for agent in await directory.all():
                listed = ",".join(agent.skills) or "-"
                print(f"{agent.username}\t{agent.name}\t{agent.role}\t{listed}\t{agent.capacity}")
        elif args.command == "remove-agent":
            if not await directory.remove(args.username):
                print(f"No agent {args.username!r}.", file=sys.stderr)
                return 1
            print(f"Removed agent {args.username}.")
        elif args.command == "case-status":
            number = normalise_case_number(args.case_number) or ""
            cases = CaseBook(redis, settings.case_retention_s)
            case = await cases.set_status(number, args.status, note=args.note, by="admin")
            if case is None:
                print(f"No case {args.case_number!r}.", file=sys.stderr)
                return 1
            print(f"{case.number}: {case.status} ({len(case.history)} status changes).")
    except AgentInputError as exc:
        print(f"Invalid {exc}", file=sys.stderr)
        return 2
    except RedisConnectionError:
        print(
            f"Cannot reach Redis at {settings.effective_redis_url}. "
            "Start the assistant with `make run` or set REDIS_URL.",
            file=sys.stderr,
        )
        return 1
    finally:
        await redis.aclose()
    return 0


def main() -> None:
    sys.exit(asyncio.run(_run(_parser().parse_args())))


if __name__ == "__main__":
    main()
