"""Kafka adapters: the `kafka` settings section, topic administration, the
consent registry reader and consumer-lag probes."""
