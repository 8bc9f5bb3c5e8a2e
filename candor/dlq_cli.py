"""`candor dlq list | show | replay`: look at dead letters and send them back.

Dead letters are read from the ``dead_letters`` table (filled from
``capture.dlq`` by the DLQ sink; see `sinks.dlq` and `schemas.dead_letter`). A dead
letter's id is ``<dlq partition>:<dlq offset>``: its place in the DLQ topic.

``replay`` selects dead letters (by reason, original topic, landing time, or
ids), reads their exact bytes and key back from the DLQ topic, and produces
them to the topic they came from (the ``original_topic`` header), idempotent
producer, ``acks=all``. Use it after the fix - a new schema version deployed,
a consent or a bug fixed. Safe to repeat:

- each replay is recorded in ``audit_log`` (action ``dlq_replay``, the ids), and
  a dead letter already replayed is skipped unless ``--again``;
- and even then an event lands once: the stream workers drop a device's
  sequence number they already passed on, and ``events`` collapses on
  ``event_id`` (ReplacingMergeTree), so a replayed event is counted once by
  ``event_id``.

``--dry-run`` prints what would be sent and sends nothing. A progress bar goes to
stderr. Dead letters whose message is no longer in the DLQ topic (retention)
are reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from candor.settings import Settings
from schemas.topics import Topic

__all__ = [
    "DeadLetterRow",
    "DlqSelection",
    "ReplayReport",
    "add_commands",
    "replay",
    "select_dead_letters",
]

Handler = Callable[[argparse.Namespace, Settings], int]
BAD_INPUT = 2
REPLAY_ACTION = "dlq_replay"
HEADER_REPLAYED = "replayed_from"


class InvalidDeadLetterId(ValueError):
    """An id that is not ``<partition>:<offset>``."""


@dataclass(frozen=True)
class DlqSelection:
    """Which dead letters: every given criterion must hold (None: any)."""

    reason: str | None = None
    topic: str | None = None  # the original topic, with or without the topic prefix
    since: datetime | None = None  # landed at or after
    until: datetime | None = None  # landed before
    ids: tuple[tuple[int, int], ...] = ()
    limit: int = 100_000


@dataclass(frozen=True)
class DeadLetterRow:
    """One dead letter as the ``dead_letters`` table holds it."""

    dlq_topic: str
    dlq_partition: int
    dlq_offset: int
    reason: str
    error: str
    original_topic: str
    original_partition: int
    original_offset: int
    landed_at: datetime
    headers: dict[str, str]
    raw_bytes: int

    @property
    def id(self) -> str:
        """``<dlq partition>:<dlq offset>``."""
        return f"{self.dlq_partition}:{self.dlq_offset}"


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did (or, dry, would do)."""

    selected: int
    replayed: list[str]
    skipped_already: list[str]
    missing: list[str]  # no longer in the DLQ topic, or carrying no value
    dry_run: bool


def parse_id(text: str) -> tuple[int, int]:
    """``"3:1200"`` -> ``(3, 1200)``; raises :class:`InvalidDeadLetterId`."""
    part, sep, offset = text.strip().partition(":")
    try:
        if not sep:
            raise ValueError
        found = int(part), int(offset)
    except ValueError:
        raise InvalidDeadLetterId(
            f"dead letter id {text!r}: expected <partition>:<offset>"
        ) from None
    if found[0] < 0 or found[1] < 0:
        raise InvalidDeadLetterId(f"dead letter id {text!r}: negative")
    return found


def _where(settings: Settings, sel: DlqSelection) -> tuple[str, dict[str, Any]]:
    clauses = ["dlq_topic = {dlq:String}"]
    params: dict[str, Any] = {"dlq": settings.kafka.topic(Topic.CAPTURE_DLQ)}
    if sel.reason is not None:
        clauses.append("reason = {reason:String}")
        params["reason"] = sel.reason
    if sel.topic is not None:
        clauses.append("original_topic IN ({topic:String}, {prefixed:String})")
        params["topic"], params["prefixed"] = sel.topic, settings.kafka.topic(sel.topic)
    if sel.since is not None:
        clauses.append("landed_at >= {since:DateTime64(6, 'UTC')}")
        params["since"] = sel.since
    if sel.until is not None:
        clauses.append("landed_at < {until:DateTime64(6, 'UTC')}")
        params["until"] = sel.until
    if sel.ids:
        clauses.append("(dlq_partition, dlq_offset) IN {ids:Array(Tuple(Int32, Int64))}")
        params["ids"] = list(sel.ids)
    return " AND ".join(clauses), params


def select_dead_letters(
    settings: Settings, sel: DlqSelection, client: Any = None
) -> list[DeadLetterRow]:
    """The dead letters matching ``sel``, oldest first. Blocks on ClickHouse."""
    from backends.clickhouse.connection import connect

    client = client or connect(settings)
    where, params = _where(settings, sel)
    rows = client.query(
        "SELECT dlq_topic, dlq_partition, dlq_offset, reason, error, original_topic, "
        "original_partition, original_offset, landed_at, headers, length(raw) "
        f"FROM dead_letters FINAL WHERE {where} "
        f"ORDER BY landed_at, dlq_partition, dlq_offset LIMIT {int(sel.limit)}",
        parameters=params,
    ).result_rows
    return [
        DeadLetterRow(
            str(t),
            int(p),
            int(o),
            str(r),
            str(e),
            str(ot),
            int(op),
            int(oo),
            landed,
            dict(h),
            int(n),
        )
        for t, p, o, r, e, ot, op, oo, landed, h, n in rows
    ]


def _replayed_ids(client: Any) -> set[str]:
    rows = client.query(
        "SELECT detail FROM audit_log WHERE action = {a:String}", parameters={"a": REPLAY_ACTION}
    ).result_rows
    done: set[str] = set()
    for (detail,) in rows:
        try:
            done.update(json.loads(str(detail)).get("ids", []))
        except ValueError:
            continue
    return done


def _fetch(
    settings: Settings, topic: str, wanted: dict[int, set[int]], timeout: float = 30.0
) -> dict[tuple[int, int], tuple[bytes | None, bytes | None]]:
    """Read the messages at ``wanted`` offsets of ``topic``: ``{(p, o): (key, value)}``.
    Offsets gone by retention are absent from the result. Blocks on Kafka."""
    import time

    from confluent_kafka import OFFSET_END, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"candor-dlq-replay-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    found: dict[tuple[int, int], tuple[bytes | None, bytes | None]] = {}
    try:
        assignment = []
        remaining: dict[int, int] = {}
        for partition, offsets in wanted.items():
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout
            )
            usable = {o for o in offsets if low <= o < high}
            if usable:
                assignment.append(TopicPartition(topic, partition, min(usable)))
                remaining[partition] = max(usable)
        if not assignment:
            return found
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            partition, offset = msg.partition() or 0, msg.offset() or 0
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    remaining.pop(partition, None)
                continue
            if offset in wanted.get(partition, ()):
                found[(partition, offset)] = (msg.key(), msg.value())
            if partition in remaining and offset >= remaining[partition]:
                del remaining[partition]
                consumer.incremental_unassign([TopicPartition(topic, partition, OFFSET_END)])
    finally:
        consumer.close()
    return found


class _Progress:
    """A one-line progress bar on ``out`` (stderr): ``[#####-----] 5/10``."""

    def __init__(self, total: int, out: TextIO, width: int = 30) -> None:
        self.total, self.out, self.width, self.done = total, out, width, 0

    def step(self, n: int = 1) -> None:
        self.done += n
        filled = self.width * self.done // max(1, self.total)
        print(
            f"\rreplaying [{'#' * filled}{'-' * (self.width - filled)}] {self.done}/{self.total}",
            end="",
            file=self.out,
            flush=True,
        )

    def close(self) -> None:
        print(file=self.out, flush=True)


def replay(
    settings: Settings,
    sel: DlqSelection,
    *,
    dry_run: bool = False,
    again: bool = False,
    actor: str = "candor-dlq",
    client: Any = None,
    progress: TextIO | None = None,
) -> ReplayReport:
    """Produce the selected dead letters back to their original topics.

    Skips dead letters already replayed (``audit_log``) unless ``again``;
    with ``dry_run`` sends nothing and records nothing. Returns what was (or
    would be) replayed. Raises RuntimeError when Kafka does not acknowledge
    every message within 30 s (the replay is then not recorded; repeating it
    is safe: see the module docstring). Blocks on ClickHouse and Kafka.
    """
    from confluent_kafka import Producer

    from backends.clickhouse.connection import connect
    from backends.clickhouse.key_store import write_audit

    client = client or connect(settings)
    rows = select_dead_letters(settings, sel, client)
    done = set() if again else _replayed_ids(client)
    todo = [r for r in rows if r.id not in done]
    skipped = [r.id for r in rows if r.id in done]
    by_topic: dict[str, dict[int, set[int]]] = {}
    for r in todo:
        by_topic.setdefault(r.dlq_topic, {}).setdefault(r.dlq_partition, set()).add(r.dlq_offset)
    messages: dict[tuple[str, int, int], tuple[bytes | None, bytes | None]] = {}
    for topic, wanted in by_topic.items():
        for (p, o), kv in _fetch(settings, topic, wanted).items():
            messages[(topic, p, o)] = kv
    # a dead letter without a value (an oversize record, `DeadLetter.capped`) has
    # nothing to send back: it is reported with the missing ones
    sendable = [
        r
        for r in todo
        if messages.get((r.dlq_topic, r.dlq_partition, r.dlq_offset), (None, None))[1] is not None
    ]
    sent_ids = {r.id for r in sendable}
    missing = [r.id for r in todo if r.id not in sent_ids]
    if dry_run or not sendable:
        return ReplayReport(len(rows), [r.id for r in sendable], skipped, missing, dry_run)
    producer = Producer(
        {
            **settings.kafka.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    errors: list[str] = []
    bar = _Progress(len(sendable), progress) if progress is not None else None

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))
        elif bar is not None:
            bar.step()

    for r in sendable:
        key, value = messages[(r.dlq_topic, r.dlq_partition, r.dlq_offset)]
        producer.produce(
            r.original_topic,
            key=key,
            value=value,
            on_delivery=delivered,
            headers=[(HEADER_REPLAYED, f"{r.dlq_topic}:{r.id}".encode())],
        )
        producer.poll(0)
    left = producer.flush(30)
    if bar is not None:
        bar.close()
    if left or errors:
        raise RuntimeError(f"dlq replay: {left} unacknowledged, errors {errors[:3]}")
    replayed = [r.id for r in sendable]
    write_audit(
        client,
        actor,
        REPLAY_ACTION,
        "",
        {
            "ids": replayed,
            "dlq_topic": settings.kafka.topic(Topic.CAPTURE_DLQ),
            "reasons": sorted({r.reason for r in sendable}),
            "again": again,
        },
    )
    return ReplayReport(len(rows), replayed, skipped, missing, dry_run=False)


def _time(text: str) -> datetime:
    """An ISO time (naive = UTC)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _selection(args: argparse.Namespace) -> DlqSelection:
    ids = tuple(parse_id(i) for i in (getattr(args, "ids", None) or ()))
    return DlqSelection(
        reason=args.reason,
        topic=args.topic,
        since=_time(args.since) if args.since else None,
        until=_time(args.until) if args.until else None,
        ids=ids,
        limit=args.limit,
    )


def _print_rows(rows: Iterable[DeadLetterRow], out: TextIO) -> None:
    for r in rows:
        print(
            f"{r.id:<12} {r.landed_at:%Y-%m-%d %H:%M:%S}  {r.reason:<22} "
            f"{r.original_topic}[{r.original_partition}]@{r.original_offset}  "
            f"{r.error[:80]}",
            file=out,
        )


def _list(args: argparse.Namespace, settings: Settings) -> int:
    rows = select_dead_letters(settings, _selection(args))
    _print_rows(rows, sys.stdout)
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        counts[(r.reason, r.original_topic)] = counts.get((r.reason, r.original_topic), 0) + 1
    summary = ", ".join(
        f"{n} {reason} from {topic}" for (reason, topic), n in sorted(counts.items())
    )
    print(f"{len(rows)} dead letters" + (f": {summary}" if summary else ""), file=sys.stderr)
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    partition, offset = parse_id(args.id)
    rows = select_dead_letters(settings, DlqSelection(ids=((partition, offset),)))
    if not rows:
        print(f"candor dlq show: no dead letter {args.id}", file=sys.stderr)
        return BAD_INPUT
    r = rows[0]
    # Metadata only: the raw message may hold content in clear.
    print(
        json.dumps(
            {
                "id": r.id,
                "dlq_topic": r.dlq_topic,
                "reason": r.reason,
                "error": r.error,
                "original_topic": r.original_topic,
                "original_partition": r.original_partition,
                "original_offset": r.original_offset,
                "landed_at": r.landed_at.isoformat(),
                "headers": r.headers,
                "raw_bytes": r.raw_bytes,
            },
            indent=2,
            sort_keys=True,
        )
    )
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    sel = _selection(args)
    if (
        sel.reason is None
        and sel.topic is None
        and sel.since is None
        and sel.until is None
        and not sel.ids
        and not args.all
    ):
        print(
            "candor dlq replay: select by --reason, --topic, --since/--until or --id (or --all)",
            file=sys.stderr,
        )
        return BAD_INPUT
    report = replay(
        settings, sel, dry_run=args.dry_run, again=args.again, actor=args.by, progress=sys.stderr
    )
    verb = "would replay" if report.dry_run else "replayed"
    print(
        f"{verb} {len(report.replayed)} of {report.selected} selected dead letters; "
        f"{len(report.skipped_already)} already replayed (--again to resend), "
        f"{len(report.missing)} no longer in the DLQ topic or without a value"
    )
    for dead_id in report.replayed:
        print(f"  {dead_id}")
    return 0


def add_commands(subparsers: Any) -> dict[str, Handler]:
    """Add ``dlq list|show|replay`` to the `candor` parser; return its handler."""
    dlq = subparsers.add_parser("dlq", help="list, show and replay dead letters")
    actions = dlq.add_subparsers(dest="dlq_action", required=True, metavar="ACTION")

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("--reason", help="e.g. unknown_schema, invalid_field, unmappable")
        p.add_argument("--topic", help="original topic (capture.events, capture.clean, ...)")
        p.add_argument("--since", help="landed at or after (ISO time, UTC if naive)")
        p.add_argument("--until", help="landed before (ISO time, UTC if naive)")
        p.add_argument("--limit", type=int, default=100_000)

    selection(actions.add_parser("list", help="dead letters by reason, topic and time"))
    show = actions.add_parser("show", help="one dead letter's reason, error and headers")
    show.add_argument("id", help="<partition>:<offset> in the DLQ topic (from `list`)")
    rep = actions.add_parser("replay", help="send dead letters back to their source topic")
    selection(rep)
    rep.add_argument("--id", dest="ids", action="append", help="a dead letter id (repeatable)")
    rep.add_argument("--all", action="store_true", help="every dead letter (no filter)")
    rep.add_argument("--dry-run", action="store_true", help="say what would be sent; send nothing")
    rep.add_argument("--again", action="store_true", help="also resend ones already replayed")
    rep.add_argument("--by", default="candor-dlq", help="who replays (audited)")

    handlers: dict[str, Handler] = {"list": _list, "show": _show, "replay": _replay}

    def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return handlers[args.dlq_action](args, settings)
        except (InvalidDeadLetterId, ValueError) as err:
            print(f"candor dlq {args.dlq_action}: {err}", file=sys.stderr)
            return BAD_INPUT

    return {"dlq": run}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dlq`` standalone (``python -m candor.dlq_cli dlq ...``)."""
    from candor.settings import load_settings

    parser = argparse.ArgumentParser(prog="candor")
    handlers = add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return handlers[args.command](args, load_settings())


if __name__ == "__main__":
    sys.exit(main())
