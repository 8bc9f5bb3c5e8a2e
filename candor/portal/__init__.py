"""The person's own transparency portal (`candor portal`).

A person signs in with a one-time invite link (``candor portal invite``), sees
what Candor holds about them (consent and its history, capture hours, activity
per day, redactions, recent events, exports that held them, erasure receipts),
changes their consent, downloads all their data and asks for erasure.

Modules: :mod:`.store` (invites and sessions), :mod:`.ratelimit`,
:mod:`.data` (the subject's rows, read from ClickHouse), :mod:`.charts` (SVG),
:mod:`.pages` (HTML), :mod:`.download` (the zip), :mod:`.access` (the
portal's least-privilege ClickHouse user), :mod:`.app` (the aiohttp app) and
:mod:`.cli` (the commands).
"""
