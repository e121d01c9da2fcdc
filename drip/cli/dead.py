"""`drip dead list|show|replay|purge`: the dead letters."""

from __future__ import annotations

import argparse
import sys

import msgspec

from drip.cli.common import load_settings, store
from drip.core.messages import iso
from drip.operations import dead as operations
from drip.store.dead import CHUNK, DeadLetters


def _dead() -> DeadLetters:
    return store(load_settings()).dead


def _chosen(dead: DeadLetters, args: argparse.Namespace) -> list:
    """The dead letters an `ID | --queue Q | --all` choice names."""
    return operations.chosen(dead, message_id=args.id, queue=args.queue)  # --all: neither


def cmd_dead_list(args: argparse.Namespace) -> int:
    letters = _dead().list(args.queue)
    if args.json:
        print(msgspec.json.encode([operations.letter_json(d) for d in letters]).decode())
        return 0
    if not letters:
        print("no dead letters")
        return 0
    width = max(len("QUEUE"), *(len(d.queue) for d in letters))
    print(f"{'ID':<36}  {'QUEUE':<{width}}  {'ATTEMPTS':>8}  {'FAILED AT':<24}  ERROR")
    for d in letters:
        print(f"{d.id:<36}  {d.queue:<{width}}  {d.attempts:>8}  {iso(d.failed_at_ms):<24}  {d.error[:80]}")
    return 0


def cmd_dead_show(args: argparse.Namespace) -> int:
    (letter,) = operations.chosen(_dead(), message_id=args.id)
    print(msgspec.json.format(msgspec.json.encode(operations.letter_json(letter)), indent=2).decode())
    return 0


def cmd_dead_replay(args: argparse.Namespace) -> int:
    dead = _dead()
    letters = _chosen(dead, args)
    total = len(letters)

    def progress(done: int) -> None:
        if total > CHUNK:
            print(f"replayed {done}/{total}", file=sys.stderr, flush=True)

    print(operations.replay(dead, letters, to_head=not args.tail, by="cli", progress=progress).text)
    return 0


def cmd_dead_purge(args: argparse.Namespace) -> int:
    dead = _dead()
    print(operations.purge(dead, _chosen(dead, args), by="cli").text)
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
