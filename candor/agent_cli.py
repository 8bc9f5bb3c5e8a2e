"""``python -m candor.agent_cli``: capture this X11 desktop into Kafka.

Signals: SIGUSR1 pauses, SIGUSR2 resumes, SIGINT/SIGTERM flush and exit.
Creating the pause file (default ``<spool dir>/paused``) pauses too, for as
long as it exists. With ``--screen-frames``, frames (excluded apps' windows
blacked out) go to ``<spool dir>/frames`` and, with ``--gateway-url``, from
there to the gateway's ``PUT /v1/frames``. Exit code 0 when everything was delivered, 2 when events
are left in the spool for the next start.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from candor.settings import load_settings
from producers.agent.agent import DesktopAgent
from producers.agent.frames import FrameCapturer, FrameConfig, FrameUploader
from producers.agent.privacy import PauseSwitch, PrivacyPolicy
from producers.agent.recorder import Recorder, RecorderConfig
from producers.sdk.client import CaptureClient
from schemas.topics import Topic


def build_parser() -> argparse.ArgumentParser:
    """The agent's command line."""
    parser = argparse.ArgumentParser(prog="python -m candor.agent_cli", description=__doc__)
    parser.add_argument("--device", required=True)
    parser.add_argument("--subject", required=True)
    parser.add_argument("--org", required=True)
    parser.add_argument("--topic", default=Topic.CAPTURE_EVENTS.value)
    parser.add_argument(
        "--spool-dir", type=Path, default=None, help="default: $CANDOR_HOME/agent/<device>"
    )
    parser.add_argument(
        "--pause-file",
        type=Path,
        default=None,
        help="capture pauses while this file exists (default <spool>/paused)",
    )
    parser.add_argument(
        "--exclude-app",
        action="append",
        default=[],
        help="more apps whose keystroke content is never sent",
    )
    parser.add_argument("--idle-after", type=float, default=60.0, help="seconds")
    parser.add_argument("--display", default=None, help="X display (default $DISPLAY)")
    parser.add_argument(
        "--screen-frames",
        action="store_true",
        help="capture screen frames (the subject's screen_frames consent is "
        "checked again by the gateway)",
    )
    parser.add_argument(
        "--frame-interval",
        type=float,
        default=1.0,
        help="at most one frame per this many seconds (default 1)",
    )
    parser.add_argument(
        "--frame-idle-every",
        type=float,
        default=30.0,
        help="a frame every this many seconds without actions (default 30)",
    )
    parser.add_argument("--frame-format", choices=("PNG", "WEBP"), default="PNG")
    parser.add_argument("--gateway-url", default=None, help="upload frames to this gateway")
    parser.add_argument(
        "--gateway-token-file",
        type=Path,
        default=None,
        help="file holding the device's gateway bearer token",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent until a signal stops it."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings()
    from producers.agent.x11 import FocusProbe, InputListeners

    spool_dir = args.spool_dir or settings.home / "agent" / args.device
    pause = PauseSwitch(args.pause_file or spool_dir / "paused")
    policy = PrivacyPolicy.with_extra(args.exclude_app, screen_frames=args.screen_frames)
    recorder = Recorder(policy, RecorderConfig(idle_after_s=args.idle_after))
    focus = FocusProbe(args.display)
    frames, uploader, closers = _frames(args, policy, spool_dir)
    with CaptureClient(
        settings.kafka.bootstrap,
        spool_dir=spool_dir,
        org_id=args.org,
        subject_id=args.subject,
        device_id=args.device,
        topic=args.topic,
    ) as client:
        agent = DesktopAgent(
            client,
            recorder,
            focus,
            pause,
            frames=frames,
            frame_outbox=spool_dir / "frames" if frames else None,
        )

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if signum == signal.SIGUSR1:
                pause.pause()
            elif signum == signal.SIGUSR2:
                pause.resume()
            else:
                agent.stop()

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, on_signal)
        listeners = InputListeners(agent.submit)
        listeners.start()
        logging.getLogger(__name__).info("capturing as device %s", args.device)
        try:
            agent.run()
        finally:
            listeners.stop()
            focus.close()
            if uploader is not None:
                uploader.stop()
            for close in closers:
                close()
        left = client.close()
    return 0 if left == 0 else 2


def _frames(
    args: argparse.Namespace, policy: PrivacyPolicy, spool_dir: Path
) -> tuple[FrameCapturer | None, FrameUploader | None, list[Callable[[], None]]]:
    """The frame capturer (None unless ``--screen-frames``), its uploader and closers."""
    if not policy.screen_frames:
        return None, None, []
    from producers.agent.x11_frames import ExcludedWindows, ScreenGrabber

    grabber = ScreenGrabber(args.display)
    excluded = ExcludedWindows(policy, args.display)
    capturer = FrameCapturer(
        grabber.grab,
        excluded.rects,
        FrameConfig(
            min_interval_s=args.frame_interval,
            idle_every_s=args.frame_idle_every,
            image_format=args.frame_format,
        ),
    )
    uploader = None
    if args.gateway_url:
        if args.gateway_token_file is None:
            raise SystemExit("--gateway-url needs --gateway-token-file")
        token = args.gateway_token_file.read_text().strip()
        uploader = FrameUploader(spool_dir / "frames", args.gateway_url, token)
        uploader.start()
    return capturer, uploader, [grabber.close, excluded.close]


if __name__ == "__main__":
    sys.exit(main())
