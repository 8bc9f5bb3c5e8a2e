"""Adapters that talk to Kafka, ClickHouse and the frame store on behalf of
several stages, each with its own settings section.

Layer rule (docs/architecture.md): imported by `candor/` and the stages
(`producers/`, `streams/`, `sinks/`); imports only `privacy/` and `schemas/`.
"""
