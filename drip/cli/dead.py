"""`drip dead list|show|replay|purge`: the dead letters."""

from __future__ import annotations

import argparse
import sys

import msgspec

from drip.cli.common import load_settings, store
from drip.core.errors import NotFound
from drip.core.messages import iso
from drip.core.redact import redact_json
from drip.store.dead import CHUNK, DeadLetter, DeadLetters


def _dead() -> DeadLetters:
    return store(load_settings()).dead


def _chosen_letters(dead: DeadLetters, args: argparse.Namespace) -> list[DeadLetter]:
    """The dead letters an `ID | --queue Q | --all` choice names; an ID that is not dead is an error."""
    if args.id:
        letter = dead.get(args.id)
        if letter is None:
            raise NotFound(f"no dead letter {args.id} (see drip dead list)")
        return [letter]
    return dead.list(args.queue)  # --queue Q, or --all (queue None)


def cmd_dead_list(args: argparse.Namespace) -> int:
    letters = _dead().list(args.queue)
    if args.json:
        print(msgspec.json.encode([_letter_json(d) for d in letters]).decode())
        return 0
    if not letters:
        print("no dead letters")
        return 0
    width = max(len("QUEUE"), *(len(d.queue) for d in letters))
    print(f"{'ID':<36}  {'QUEUE':<{width}}  {'ATTEMPTS':>8}  {'FAILED AT':<24}  ERROR")
    for d in letters:
        print(f"{d.id:<36}  {d.queue:<{width}}  {d.attempts:>8}  {iso(d.failed_at_ms):<24}  {d.error[:80]}")
    return 0


def _letter_json(d: DeadLetter) -> dict:
    return {"id": d.id, "queue": d.queue, "attempts": d.attempts, "error": d.error, "failed_at": iso(d.failed_at_ms),
            "enqueued_at": iso(d.enqueued_ms), "run_at": iso(d.run_at_ms), "payload": msgspec.Raw(redact_json(d.payload))}


def cmd_dead_show(args: argparse.Namespace) -> int:
    letter = _dead().get(args.id)
    if letter is None:
        raise NotFound(f"no dead letter {args.id} (see drip dead list)")
    print(msgspec.json.format(msgspec.json.encode(_letter_json(letter)), indent=2).decode())
    return 0


def cmd_dead_replay(args: argparse.Namespace) -> int:
    dead = _dead()
    letters = _chosen_letters(dead, args)
    total = len(letters)

    def progress(done: int) -> None:
        if total > CHUNK:
            print(f"replayed {done}/{total}", file=sys.stderr, flush=True)

    done = dead.replay(letters, to_head=not args.tail, progress=progress)
    print(f"replayed {done} message{'s' * (done != 1)} to the {'tail' if args.tail else 'head'} of their queue")
    return 0


def cmd_dead_purge(args: argparse.Namespace) -> int:
    dead = _dead()
    purged = dead.purge(_chosen_letters(dead, args))
    print(f"purged {purged} dead letter{'s' * (purged != 1)}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dead", help="dead letters: list, show, replay, purge")
    dead_sub = p.add_subparsers(dest="dead_command", required=True, metavar="TASK")
    d = dead_sub.add_parser("list", help="list dead letters")
    d.add_argument("--queue", help="only this queue's")
    d.add_argument("--json", action="store_true", help="print JSON for scripts")
    d.set_defaults(func=cmd_dead_list)
    d = dead_sub.add_parser("show", help="show one dead letter, payload included")
    d.add_argument("id")
    d.set_defaults(func=cmd_dead_show)
    for name, func, what in (("replay", cmd_dead_replay, "put dead letters back into their queue"),
                             ("purge", cmd_dead_purge, "delete dead letters for good")):
        d = dead_sub.add_parser(name, help=what)
        choice = d.add_mutually_exclusive_group(required=True)
        choice.add_argument("id", nargs="?", help="one dead letter's message id")
        choice.add_argument("--queue", help="every dead letter of this queue")
        choice.add_argument("--all", action="store_true", help="every dead letter")
        if name == "replay":
            d.add_argument("--tail", action="store_true", help="at the tail of the queue (default: at its head)")
        d.set_defaults(func=func)
