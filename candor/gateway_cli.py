"""CLI commands of the producers: ``candor gateway``, ``candor gateway token
add|revoke|list`` and ``candor simulate``.

`add_commands(subparsers)` registers them on the `candor` parser and returns
``{command: handler}`` in the shape of `candor.cli` (``handler(args, settings) -> exit code``).
``python -m candor.gateway_cli ...`` runs the same commands on their own.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from candor.settings import Settings, load_settings
from schemas.topics import Topic

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from producers.gateway.auth import TokenFile
    from producers.gateway.frames import FrameRoutes

Handler = Callable[[argparse.Namespace, Settings], int]
# (settings, token file, metrics registry) -> the frame route (candor.frame_gateway)
FrameRoutesFactory = Callable[[Settings, "TokenFile", "CollectorRegistry"], "FrameRoutes"]
_DAY_MICROS = 86_400 * 1_000_000


def default_token_file(settings: Settings) -> Path:
    """Where the gateway's token file lives unless told otherwise."""
    return settings.home / "gateway" / "tokens.json"


def add_commands(
    subparsers: Any, frame_routes: FrameRoutesFactory | None = None
) -> dict[str, Handler]:
    """Add ``gateway`` and ``simulate`` to `subparsers` (the result of
    ``parser.add_subparsers()``); return their handlers by command name.
    `frame_routes` composes the frame route (``candor.frame_gateway``) for a
    gateway whose settings turn ``frames.gateway`` on; without it such a
    gateway refuses to start."""
    gateway = subparsers.add_parser(
        "gateway", help="serve the HTTP capture gateway, or manage its device tokens"
    )
    gateway.add_argument("--host", default="127.0.0.1")
    gateway.add_argument("--port", type=int, default=8088)
    gateway.add_argument(
        "--token-file", type=Path, default=None, help="default: $CANDOR_HOME/gateway/tokens.json"
    )
    gateway.add_argument(
        "--topic", default=None, help="default: capture.events (with CANDOR_KAFKA__TOPIC_PREFIX)"
    )
    gateway.add_argument("--rate", type=float, default=2000.0, help="events/s per device")
    gateway.add_argument("--burst", type=float, default=10000.0, help="events per device burst")
    gateway.add_argument("--max-events", type=int, default=1000, help="events per batch")
    gateway.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024)
    gateway.add_argument(
        "--token-rate",
        type=float,
        default=50.0,
        help="requests/s per token, checked before the body is read",
    )
    gateway.add_argument(
        "--token-burst", type=float, default=200.0, help="requests per token burst"
    )
    gateway.add_argument(
        "--token-bytes-rate",
        type=float,
        default=8 * 1024 * 1024,
        help="body bytes/s per token, checked before parsing",
    )
    gateway.add_argument(
        "--token-bytes-burst",
        type=float,
        default=16 * 1024 * 1024,
        help="body bytes per token burst (at least --max-body-bytes)",
    )
    actions = gateway.add_subparsers(dest="gateway_action", metavar="ACTION")
    token = actions.add_parser("token", help="device tokens")
    token_actions = token.add_subparsers(dest="token_action", required=True, metavar="ACTION")
    add = token_actions.add_parser("add", help="create a token for one device; printed once")
    add.add_argument("--device", required=True)
    add.add_argument("--subject", required=True)
    add.add_argument("--org", required=True)
    add.add_argument(
        "--expires-days", type=float, default=None, help="lifetime in days (default: no expiry)"
    )
    revoke = token_actions.add_parser(
        "revoke",
        help="remove a device's tokens (or one, by the hash `token list` shows); "
        "a running gateway refuses them from its next request on",
    )
    revoke.add_argument("--device", default=None)
    revoke.add_argument(
        "--hash",
        default=None,
        dest="token_hash",
        help="stored hash or a prefix of it (at least 8 hex digits)",
    )
    token_actions.add_parser("list", help="stored tokens: hash prefix, device, expiry")

    simulate = subparsers.add_parser(
        "simulate", help="publish simulated people's capture events through the SDK"
    )
    simulate.add_argument("--people", type=int, default=50)
    simulate.add_argument(
        "--rate",
        type=float,
        default=5000.0,
        help="events per wall-clock second (0: as fast as possible)",
    )
    simulate.add_argument("--duration", type=float, default=60.0, help="wall-clock seconds")
    simulate.add_argument(
        "--seed",
        type=int,
        default=None,
        help="default: a new one per run, printed (the same seed replays "
        "the same devices and sequence numbers: duplicates)",
    )
    simulate.add_argument(
        "--topic", default=None, help="default: capture.events (with CANDOR_KAFKA__TOPIC_PREFIX)"
    )
    simulate.add_argument(
        "--spool-dir",
        type=Path,
        default=None,
        help="one directory per device under it (default: $CANDOR_HOME/simulator/spool)",
    )
    simulate.add_argument(
        "--frames-per-person",
        type=int,
        default=0,
        help="give each person's first N screen frames pixels and put them "
        "to --gateway-url (a gateway with frames on; default 0: none)",
    )
    simulate.add_argument(
        "--gateway-url",
        default="http://127.0.0.1:8088",
        help="the gateway taking the frames; a token per simulated device "
        "(valid one day) is added to its --token-file",
    )
    simulate.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="the gateway's token file (default: $CANDOR_HOME/gateway/tokens.json)",
    )

    def gateway_handler(args: argparse.Namespace, settings: Settings) -> int:
        return _gateway(args, settings, frame_routes)

    return {"gateway": gateway_handler, "simulate": _simulate}


def _gateway(
    args: argparse.Namespace, settings: Settings, frame_routes: FrameRoutesFactory | None = None
) -> int:
    token_file = args.token_file or default_token_file(settings)
    if args.gateway_action == "token":
        if args.token_action == "revoke":
            return _token_revoke(args, token_file)
        if args.token_action == "list":
            return _token_list(token_file)
        return _token_add(args, token_file)
    from producers.gateway.server import GatewayConfig, run_gateway

    config = GatewayConfig(
        topic=args.topic or settings.kafka.topic(Topic.CAPTURE_EVENTS),
        max_body_bytes=args.max_body_bytes,
        max_events=args.max_events,
        rate_per_device=args.rate,
        burst_per_device=max(args.burst, float(args.max_events)),
        requests_per_token_s=args.token_rate,
        request_burst_per_token=args.token_burst,
        bytes_per_token_s=args.token_bytes_rate,
        byte_burst_per_token=max(args.token_bytes_burst, float(args.max_body_bytes)),
    )
    frames: Callable[[TokenFile, CollectorRegistry], FrameRoutes] | None = None
    if settings.frames.gateway:
        if frame_routes is None:
            print(
                "candor gateway: frames.gateway is on, but this entry point has no frame "
                "route; run `candor gateway` (candor.cli), which composes it",
                file=sys.stderr,
            )
            return 2
        frames = functools.partial(frame_routes, settings)

    run_gateway(settings, args.host, args.port, token_file, config=config, frame_routes=frames)
    return 0


def _token_add(args: argparse.Namespace, token_file: Path) -> int:
    from producers.gateway.auth import DeviceIdentity, TokenFile
    from schemas.clock import now_micros

    expires = None
    if args.expires_days is not None:
        expires = now_micros() + int(args.expires_days * _DAY_MICROS)
    identity = DeviceIdentity(args.device, args.subject, args.org, expires_at=expires)
    token = TokenFile(token_file).add(identity)
    print(token)
    print(
        f"token for device {args.device} stored (hashed) in {token_file};"
        " it is shown only this once",
        file=sys.stderr,
    )
    return 0


def _token_revoke(args: argparse.Namespace, token_file: Path) -> int:
    from producers.gateway.auth import TokenFile

    if args.device is None and args.token_hash is None:
        print("candor gateway token revoke: name --device or --hash", file=sys.stderr)
        return 2
    try:
        n = TokenFile(token_file).revoke(device_id=args.device, token_hash=args.token_hash)
    except ValueError as err:  # TokenFileError included: nothing was changed
        print(f"candor gateway token revoke: {err}", file=sys.stderr)
        return 2
    if n == 0:
        print(f"candor gateway token revoke: no such token in {token_file}", file=sys.stderr)
        return 2
    print(f"revoked {n} token(s) in {token_file}", file=sys.stderr)
    return 0


def _token_list(token_file: Path) -> int:
    from datetime import UTC, datetime

    from producers.gateway.auth import read_token_file

    try:
        tokens = read_token_file(token_file)
    except FileNotFoundError:
        tokens = {}
    for digest, who in sorted(tokens.items(), key=lambda kv: kv[1].device_id):
        expires = (
            "never"
            if who.expires_at is None
            else datetime.fromtimestamp(who.expires_at / 1e6, UTC).isoformat()
        )
        print(
            f"{digest[:16]}  device={who.device_id}  subject={who.subject_id}  "
            f"org={who.org_id}  expires={expires}"
        )
    return 0


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from producers.sdk.client import CaptureClient
    from producers.sdk.envelope import Event
    from producers.simulator.devices import DeviceClients
    from producers.simulator.simulator import (
        SimulatedDevice,
        SimulationProgress,
        Simulator,
        backdated_start,
        run_simulation,
    )
    from schemas.clock import now_micros

    rate = args.rate if args.rate > 0 else None
    limit = int(rate * args.duration) if rate is not None else None

    class _WallCapped(Simulator):
        """Enough simulated time for the whole run, cut at rate x duration events."""

        def events(self, duration_s: float) -> Iterator[Event]:
            if limit is None:
                return super().events(duration_s)
            return itertools.islice(super().events(365 * 86_400.0), limit)

    now = now_micros()
    seed = args.seed if args.seed is not None else time.time_ns() % 1_000_000_007
    print(f"simulator seed {seed}", file=sys.stderr)
    start = now if limit is None else backdated_start(args.people, seed, limit, now)
    simulator = _WallCapped(args.people, seed, start)
    spool_dir = args.spool_dir or settings.home / "simulator" / "spool"

    def report(progress: SimulationProgress) -> None:
        print(
            f"{progress.events:>10} events  {progress.elapsed_s:7.1f} s"
            f"  {progress.rate_per_s:10.0f} events/s",
            file=sys.stderr,
        )

    def open_client(device: SimulatedDevice, device_spool: Path) -> CaptureClient:
        # Each simulated device publishes under its own identity, as real ones do.
        return CaptureClient(
            settings.kafka.bootstrap,
            spool_dir=device_spool,
            org_id=simulator.org_id,
            subject_id=device.subject_id,
            device_id=device.device_id,
            topic=args.topic or settings.kafka.topic(Topic.CAPTURE_EVENTS),
            spool_fsync="never",
        )

    with DeviceClients(simulator.devices, spool_dir, open_client) as clients:
        sink: Any = clients
        if args.frames_per_person > 0:
            from producers.simulator.upload import FramingSink

            sink = FramingSink(
                clients,
                args.gateway_url,
                _device_tokens(args, settings, simulator),
                args.frames_per_person,
            )
        final = run_simulation(
            simulator, sink, duration_s=args.duration, rate=rate, progress_callback=report
        )
        left = clients.close(timeout=30.0)
    print(
        f"published {final.events} events from {args.people} people in "
        f"{final.elapsed_s:.1f} s ({final.rate_per_s:.0f}/s); {left} left in the spool"
    )
    if args.frames_per_person > 0:
        frames = sink.finish()
        print(
            f"frames: {frames.rendered} rendered, {frames.stored} stored, "
            f"{frames.duplicates} already there, refused {frames.refusals}, redacted word "
            f"boxes {frames.redactions}, {frames.unfinished} unfinished"
        )
    return 0 if left == 0 else 2


def _device_tokens(args: argparse.Namespace, settings: Settings, simulator: Any) -> dict[str, str]:
    """A gateway token per simulated device, valid one day, added to the token file."""
    from producers.gateway.auth import DeviceIdentity, TokenFile
    from schemas.clock import now_micros

    tokens = TokenFile(args.token_file or default_token_file(settings))
    expires = now_micros() + _DAY_MICROS
    return {
        d.device_id: tokens.add(
            DeviceIdentity(d.device_id, d.subject_id, simulator.org_id, expires)
        )
        for d in simulator.devices
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run one of these commands standalone (``python -m candor.gateway_cli``)."""
    parser = argparse.ArgumentParser(prog="candor")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers = add_commands(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return handlers[args.command](args, load_settings())


if __name__ == "__main__":
    sys.exit(main())
