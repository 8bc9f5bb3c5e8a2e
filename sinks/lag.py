"""The sinks' consumer lag, exported as `candor_sink_consumer_lag_records`.

A daemon thread measures, every `interval_s`, how far each sink's consumer
group is behind the end of its topic (`backends.kafka.lag.LagProbe`: committed offset
vs last stable offset, per partition) from outside the group, so it adds no
work to the insert loop and keeps reporting while a sink is stuck on
ClickHouse — exactly when the lag matters.
"""

from __future__ import annotations

import logging
import threading

from backends.kafka.lag import LagProbe, LagUnavailable, Partition, publish_lag
from sinks import metrics
from sinks.routes import route_for
from sinks.settings import SinkSettings

log = logging.getLogger(__name__)


def sink_group(settings: SinkSettings, table: str) -> str:
    """The consumer group of the sink of `table` (the default of `sinks.consumer`)."""
    return f"{settings.kafka.topic_prefix}candor-sink-{table}"


def start_lag_reporter(
    settings: SinkSettings,
    topics_by_table: dict[str, str],
    stop: threading.Event,
    interval_s: float = 5.0,
) -> threading.Thread:
    """Start the daemon thread reporting the lag of each ``{table: topic}`` sink.

    Returns the started thread; it ends when `stop` is set, after closing its
    probes (join it so their librdkafka handles are released before the
    process exits). Raises KafkaException when a probe's client cannot be
    created (bad settings). The thread never dies of a measurement: a broker
    that does not answer leaves the gauges at their last value (logged as a
    warning), anything else is logged with its traceback and retried at the
    next interval.
    """
    probes = [
        LagProbe.create(settings.kafka.client_config(), sink_group(settings, table), [topic])
        for table, topic in topics_by_table.items()
    ]

    shown: list[set[Partition]] = [set() for _ in probes]

    def loop() -> None:
        try:
            while not stop.is_set():
                for probe, published in zip(probes, shown, strict=True):
                    if stop.is_set():
                        break
                    try:
                        publish_lag(metrics.CONSUMER_LAG, probe.measure(), published)
                    except LagUnavailable as err:
                        log.warning("%s", err)
                    except Exception:  # a gauge must never end the reporting for good
                        log.exception("consumer lag of %s not measured", probe.group)
                stop.wait(interval_s)
        finally:
            for probe in probes:
                probe.close()

    thread = threading.Thread(target=loop, name="sink-lag", daemon=True)
    thread.start()
    return thread


def default_topics(settings: SinkSettings, tables: list[str]) -> dict[str, str]:
    """``{table: its default topic with the topic prefix}`` for `tables`."""
    return {t: settings.kafka.topic(route_for(t).topic) for t in tables}
