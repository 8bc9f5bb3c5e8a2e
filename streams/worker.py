"""`candor worker`: run one stream worker process.

Starts the metrics endpoint, loads the consent registry (the worker refuses to
route before it has read the whole registry), then runs the Faust worker until
SIGINT/SIGTERM. Blocks. Exit code 0 on a clean stop.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

from prometheus_client import start_http_server

from backends.clickhouse.connection import connect
from backends.clickhouse.key_store import KeyView
from backends.kafka.consent_view import ConsentView
from schemas.topics import Topic
from streams.app import WorkerConfig, build_app
from streams.changelog import ChangelogUnavailable, create_changelog_topics
from streams.metrics import GC_PAUSE_SECONDS
from streams.output import OutputProducer
from streams.settings import WorkerSettings

log = logging.getLogger(__name__)

#: Garbage collection of the worker: a batch allocates many short-lived dicts
#: (decoded events, outputs), so the young generation fills often with
#: Python's default (700, 10, 10) and each collection walks objects that
#: survive anyway. bench/processor.py (CPU time, 3 pairs): 35,900 events per
#: CPU-second with a young generation of 50,000, 38,800 with 500,000; the RSS
#: with 100,000 open sessions (bench/worker.py --sessions 100000) stayed at
#: 429 MB.
GC_THRESHOLDS = (500_000, 20, 100)


def tune_gc() -> None:
    """Move everything start-up allocated (modules, the app, the registries) out
    of the collector's sight (`gc.freeze`), raise its thresholds, and time each
    collection from now on (`GcPauses`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    if not any(isinstance(cb, GcPauses) for cb in gc.callbacks):
        gc.callbacks.append(GcPauses())


class GcPauses:
    """A `gc.callbacks` entry observing each collection's wall time in
    `streams.metrics.GC_PAUSE_SECONDS`: a collection walks every object of the
    generations it collects (up to `GC_THRESHOLDS`' 500,000 young ones: 0.2-0.3 s
    at 10,000 events/s in bench/e2e.py) and holds the interpreter meanwhile,
    which shows as a stall of the agent and the intake alike."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = self.clock()
        else:
            GC_PAUSE_SECONDS.labels(str(info["generation"])).observe(self.clock() - self.started)


def run_worker(
    settings: WorkerSettings,
    cfg: WorkerConfig,
    metrics_port: int | None = None,
    loglevel: str = "info",
) -> int:
    from faust.worker import Worker

    # Kafka clients log per fetch and per send at DEBUG: keep them quiet unless asked.
    if loglevel.lower() != "debug":
        for name in ("aiokafka", "kafka", "mode", "faust.transport"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if metrics_port:
        start_http_server(metrics_port, addr=settings.metrics_host)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, metrics_port)
    consent = ConsentView(
        dict(settings.kafka.client_config()), settings.kafka.topic(Topic.CONSENT_POLICIES)
    )
    consent.start()
    # Subjects' data keys (crypto-shredding): content leaves this worker encrypted.
    keys = KeyView(
        lambda: connect(settings), settings.master_key(), interval=settings.privacy.key_reload_s
    )
    keys.start()
    output = OutputProducer(dict(settings.kafka.client_config()))
    app = build_app(settings, cfg, consent, output, keys)
    worker = Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    tune_gc()
    code = 0
    try:
        # before faust subscribes: a changelog created after it is assigned to nobody
        create_changelog_topics(app, dict(settings.kafka.client_config()))
        worker.execute_from_commandline()  # returns only via SystemExit
    except SystemExit as stop:
        code = int(stop.code or 0)
    except ChangelogUnavailable as err:
        app.crash_reason = err
        code = 1
    finally:
        output.close()
        consent.stop()
        keys.stop()
    if code:
        # faust's own last line is "We experienced a crash! Reraising original
        # exception...": say what stopped the worker, for its supervisor's log.
        reason = worker.crash_reason or app.crash_reason
        log.error(
            "worker stopped (exit %d): %s",
            code,
            f"{type(reason).__name__}: {reason}" if reason else "see above",
        )
    return code
