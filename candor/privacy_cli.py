"""`candor consent | redact | erase | keys | analyst-access`: the privacy sub-commands.

`add_commands(subparsers)` adds them to the `candor` parser and returns their
handlers ``{command: handler(args, settings) -> exit code}``. Bad input (unknown
subject, malformed scope, revoking or erasing twice, wrong or missing master key)
prints one clear line to stderr and exits 2, having changed nothing.

The master key comes from ``settings.privacy.master_key`` when the settings
have it, else from ``--master-key-file`` (a file holding 64 hex digits or base64
of 32 bytes).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from candor.settings import Settings
from privacy.consent import ConsentError, ConsentPolicy
from privacy.keystore import KeyStoreError
from privacy.redaction import redact
from privacy.scope import UnknownScope

Handler = Callable[[argparse.Namespace, Settings], int]

BAD_INPUT = 2


class MissingMasterKey(KeyStoreError):
    """No master key in the settings and no ``--master-key-file``."""


def master_key(args: argparse.Namespace, settings: Settings) -> bytes:
    """The master key: ``--master-key-file``, else ``privacy.master_key``, else the
    local stack's key file.

    Raises :class:`MissingMasterKey` or :class:`privacy.wrapping.InvalidMasterKey`.
    """
    from privacy.wrapping import parse_master_key

    path: Path | None = getattr(args, "master_key_file", None)
    if path is not None:  # an explicit flag wins over the settings
        try:
            return parse_master_key(path.read_text())
        except OSError as err:
            raise MissingMasterKey(f"cannot read master key file {path}: {err.strerror}") from None
    from candor.settings import master_key_bytes

    return master_key_bytes(settings)  # settings, else the local stack's key file


def _scopes(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [s.strip() for s in text.split(",") if s.strip()]


def _show_policy(policy: ConsentPolicy, out: TextIO) -> None:
    print(json.dumps(policy.to_dict(), sort_keys=True), file=out)


def _consent(args: argparse.Namespace, settings: Settings) -> int:
    from backends.clickhouse.connection import connect
    from backends.clickhouse.key_store import ensure_subject_key, write_audit
    from backends.kafka import consent_registry

    subject: str = args.subject
    if args.action == "show":
        policy = consent_registry.load_registry(settings).get(subject)
        if policy is None:
            print(f"candor consent: no consent policy for subject {subject!r}", file=sys.stderr)
            return BAD_INPUT
        _show_policy(policy, sys.stdout)
        return 0
    from privacy.consent import grant, revoke
    from privacy.scope import parse_scopes
    from schemas.clock import now_micros

    scopes = _scopes(args.scopes)
    parse_scopes(scopes or [])  # a malformed scope fails before any read or write
    current = consent_registry.load_registry(settings).get(subject)
    now = now_micros()
    # The next version is computed (and refused) before anything is written.
    if args.action == "grant":
        policy = grant(
            current,
            scopes or [],
            args.by,
            now,
            subject_id=subject,
            org_id=args.org,
            reason=args.reason,
        )
    else:
        policy = revoke(current, scopes, args.by, now, reason=args.reason)
    client = connect(settings)
    if args.action == "grant":
        # The key exists before the consent does: a worker that sees the new
        # policy finds the key at its next reload instead of clearing content.
        ensure_subject_key(client, master_key(args, settings), subject, args.by)
    consent_registry.publish(settings, [policy])
    write_audit(
        client,
        args.by,
        f"consent_{args.action}",
        subject,
        {"version": policy.version, "scopes": policy.to_dict()["scopes"], "reason": args.reason},
    )
    _show_policy(policy, sys.stdout)
    return 0


def redact_stream(lines: TextIO, out: TextIO) -> int:
    """Write each line of ``lines`` redacted to ``out``, one out per in, in order,
    flushed per line (usable in a pipe). Return the number of lines."""
    n = 0
    for line in iter(lines.readline, ""):
        body = line.rstrip("\r\n")
        out.write(redact(body).text + line[len(body) :])
        out.flush()
        n += 1
    return n


def _redact(args: argparse.Namespace, settings: Settings) -> int:
    redact_stream(sys.stdin, sys.stdout)
    return 0


def _erase(args: argparse.Namespace, settings: Settings) -> int:
    from backends.erasure import erase

    if not args.yes:
        print(
            f"Erase every trace of {args.subject!r}? Type the subject id to confirm: ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if sys.stdin.readline().strip() != args.subject:
            print("candor erase: not confirmed; nothing changed", file=sys.stderr)
            return BAD_INPUT
    receipt = erase(settings, args.subject, actor=args.by, settle_s=args.settle)
    print(json.dumps(receipt.to_dict(), indent=2, sort_keys=True))
    return 0


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from backends.clickhouse.connection import connect
    from backends.clickhouse.key_store import load_keyset, verify_master, write_audit

    client = connect(settings)
    master = master_key(args, settings)
    if args.action == "check":
        verify_master(client, master)
        print(f"master key matches; {len(load_keyset(client, master))} subjects hold a key")
        return 0
    if not args.subject:
        raise ConsentError("keys status needs --subject")
    rows = client.query(
        "SELECT key_id, created_at, created_by, destroyed, destroyed_at FROM subject_keys "
        "WHERE subject_id = {s:String} ORDER BY created_at",
        parameters={"s": args.subject},
    ).result_rows
    write_audit(client, args.by, "key_read", args.subject, {"keys": len(rows)})
    if not rows:
        print(f"candor keys: subject {args.subject!r} has no data key", file=sys.stderr)
        return BAD_INPUT
    for key_id, created, by, destroyed, when in rows:
        state = f"destroyed {when}" if destroyed else "live"
        print(f"{key_id}  created {created} by {by}  {state}")
    return 0


def _analyst_access(args: argparse.Namespace, settings: Settings) -> int:
    from backends.clickhouse.analyst_access import (
        default_config_dir,
        ensure_analyst_access,
        resolve_password,
    )

    secret = resolve_password(settings, args.password_file, rotate=args.rotate)
    access = ensure_analyst_access(
        settings, secret.password, config_dir=args.config_dir or default_config_dir(settings)
    )
    print(
        f"{access.user} (role {access.role}) reads {access.database}.* only, "
        f"read-only profile, hourly quota, hosts {settings.privacy.analyst_networks}"
    )
    state = "new password generated" if secret.generated else "password"
    print(f"{state}: {secret.where}")
    if access.created:
        print("its salted hash is in ClickHouse's access storage (applied now)")
    elif access.fragment is not None:
        print(
            f"its hash is in {access.fragment}: restart ClickHouse to apply it "
            "(this server reads users only from its configuration)"
        )
    return 0


def _guarded(handler: Handler) -> Handler:
    """Turn the typed bad-input errors into one stderr line and exit code 2."""
    from backends.clickhouse.analyst_access import AccessControlUnavailable, EmptyPasswordFile
    from backends.erasure import ErasureError

    def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return handler(args, settings)
        except (
            UnknownScope,
            ConsentError,
            ErasureError,
            KeyStoreError,
            EmptyPasswordFile,
            AccessControlUnavailable,
        ) as err:
            print(f"candor {args.command}: {type(err).__name__}: {err}", file=sys.stderr)
            return BAD_INPUT

    return run


def add_commands(subparsers: Any) -> dict[str, Handler]:
    """Add consent/redact/erase/keys/analyst-access to ``subparsers``; return handlers."""

    def key_file(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--master-key-file",
            type=Path,
            help="file with the 32-byte master key (hex or base64); "
            "default: settings privacy.master_key",
        )

    p = subparsers.add_parser("consent", help="grant, revoke or show a person's consent")
    p.add_argument("action", choices=["grant", "revoke", "show"])
    p.add_argument("--subject", required=True, help="pseudonymous subject id")
    p.add_argument("--org", help="org id (needed by a subject's first grant)")
    p.add_argument("--scopes", help="comma-separated scopes (revoke: default all)")
    p.add_argument("--by", default="candor-cli", help="who makes the change")
    p.add_argument("--reason", help="why (kept in the consent ledger)")
    key_file(p)
    p = subparsers.add_parser("redact", help="redact secrets and PII: stdin lines -> stdout")
    p = subparsers.add_parser("erase", help="erase a person: keys, rows, receipt")
    p.add_argument("--subject", required=True, help="pseudonymous subject id")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--by", default="candor-erase", help="who erases (in the receipt)")
    p.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="seconds before the second delete pass (default 5)",
    )
    p = subparsers.add_parser("keys", help="key store: check the master key, key status")
    p.add_argument("action", choices=["check", "status"])
    p.add_argument("--subject", help="subject id (status)")
    p.add_argument("--by", default="candor-cli", help="who reads (audited)")
    key_file(p)
    p = subparsers.add_parser(
        "analyst-access",
        help="give the analyst login its password, read-only profile, quota and host restriction",
    )
    p.add_argument(
        "--password-file",
        type=Path,
        help="analyst password file (default: settings privacy.analyst_password, "
        "else a generated one in $CANDOR_HOME/privacy/analyst.password)",
    )
    p.add_argument(
        "--rotate",
        action="store_true",
        help="generate a new password (unless --password-file) and apply it",
    )
    p.add_argument(
        "--config-dir",
        type=Path,
        help="ClickHouse config.d for servers without a writable access "
        "storage (default: $CANDOR_HOME/clickhouse/config.d)",
    )
    handlers: dict[str, Handler] = {
        "consent": _consent,
        "redact": _redact,
        "erase": _erase,
        "keys": _keys,
        "analyst-access": _analyst_access,
    }
    return {name: _guarded(h) for name, h in handlers.items()}
