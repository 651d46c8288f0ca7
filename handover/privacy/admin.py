"""The data-protection sub-commands of `python -m handover.admin`.

    python -m handover.admin export-person (--conversation-id ID | --case-number MM-… |
        --application-number PV-… | --email ADDR | --phone NUMBER) [--out FILE] [--by NAME]
    python -m handover.admin erase-person (…one of the same…) --yes [--by NAME]
    python -m handover.admin audit-log [--limit N]
    python -m handover.admin deletion-records [--limit N]

The same logic as the admin API (privacy/api.py): exports and erasures are
written to the audit log, erasures leave a deletion record. An export file is
created with mode 0600: it holds personal data.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from redis.asyncio import Redis

from handover.conversation.log import ConversationLog
from handover.privacy.api import PrivacyServices
from handover.privacy.erasure import Requester
from handover.privacy.export import bundle_json
from handover.privacy.person_data import SUBJECT_KINDS, UnknownSubject, normalised_subject
from handover.settings import Settings

COMMANDS = ("export-person", "erase-person", "audit-log", "deletion-records")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, help_text in (
        ("export-person", "export everything stored about a person"),
        ("erase-person", "erase everything stored about a person"),
    ):
        command = commands.add_parser(name, help=help_text)
        subject = command.add_mutually_exclusive_group(required=True)
        for kind in SUBJECT_KINDS:
            subject.add_argument("--" + kind.replace("_", "-"), dest=kind)
        command.add_argument(
            "--by",
            default=f"admin:{getpass.getuser()}",
            help="who asks (kept in the audit log and deletion record)",
        )
        if name == "export-person":
            command.add_argument("--out", type=Path, help="file to write (default: stdout)")
        else:
            command.add_argument("--yes", action="store_true", help="really erase")
    for name in ("audit-log", "deletion-records"):
        listing = commands.add_parser(name, help=f"show the newest entries of the {name}")
        listing.add_argument("--limit", type=int, default=50)


async def run(args: argparse.Namespace, redis: Redis, settings: Settings) -> int:
    """Exit status: 0 done, 1 nothing found, 2 invalid input."""
    log = ConversationLog(redis, settings.retention_s, "admin-command")
    services = PrivacyServices.create(redis, log, settings)
    if args.command in ("audit-log", "deletion-records"):
        source = services.audit if args.command == "audit-log" else services.records
        for entry in await source.recent(args.limit):
            print(json.dumps(entry, ensure_ascii=False))
        return 0
    kind = next(k for k in SUBJECT_KINDS if getattr(args, k))
    try:
        value = normalised_subject(kind, getattr(args, kind))
    except UnknownSubject as exc:
        print(f"Invalid {exc}", file=sys.stderr)
        return 2
    holdings = await services.eraser.person_data.find(kind, value)
    if holdings.empty:
        print("Nothing is stored for this person.", file=sys.stderr)
        return 1
    subject = await services.pseudonyms.of(kind, value)
    if args.command == "export-person":
        bundle = await services.export.bundle(holdings, "city")
        exported: list[str | None] = [*sorted(holdings.conversations)] or [None]
        for conversation_id in exported:
            await services.audit.record(
                "export",
                actor=args.by,
                role="admin",
                conversation_id=conversation_id,
                subject=subject,
                via="admin-command",
            )
        if args.out is None:
            sys.stdout.buffer.write(bundle_json(bundle) + b"\n")
        else:
            descriptor = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                out.write(bundle_json(bundle))
            print(
                f"Wrote {args.out}: {len(bundle['conversations'])} conversations, "
                f"{len(bundle['cases'])} cases, {len(bundle['tickets'])} tickets, "
                f"{len(bundle['applications'])} applications."
            )
        return 0
    if not args.yes:
        print(
            f"Would erase {len(holdings.conversations)} conversations, {len(holdings.cases)} "
            f"cases, {len(holdings.tickets)} tickets, {len(holdings.applications)} applications. "
            "Repeat with --yes.",
            file=sys.stderr,
        )
        return 2
    record = await services.eraser.erase(holdings, Requester(args.by, "admin-command"), subject)
    await services.audit.record(
        "erase", actor=args.by, role="admin", subject=subject, via="admin-command"
    )
    print(json.dumps(record, ensure_ascii=False))
    return 0
