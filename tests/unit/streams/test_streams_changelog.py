"""The device table forgets the states of partitions a rebalance took away (faust's
memory store only forgets keys it read from the changelog), and the worker's
changelog topics are known before it starts."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP

from streams.app import new_app
from streams.changelog import DeviceTable, changelog_topics, forget_partitions
from streams.transport import App


def _table(tmp: Any) -> tuple[App, Any]:
    app = new_app(App, "changelog-test", "127.0.0.1:1", 12, tmp)
    table = app.Table("devices", default=None, partitions=12, use_partitioner=True, key_type=bytes)
    return app, table


def test_the_worker_tables_are_device_tables_with_one_known_changelog(tmp_path: Any) -> None:
    app, table = _table(tmp_path)
    assert isinstance(table, DeviceTable)
    assert changelog_topics(app) == {"changelog-test-devices-changelog": 12}


def test_a_rebalance_drops_the_states_of_revoked_partitions_only(tmp_path: Any) -> None:
    _, table = _table(tmp_path)
    changelog = "changelog-test-devices-changelog"

    async def main() -> dict[bytes, Any]:
        store = table.data
        for key, partition in ((b"dev-a", 1), (b"dev-b", 1), (b"dev-c", 2), (b"dev-d", 5)):
            store.data[key] = {"state": key.decode()}
            store._key_partition[key] = partition  # as a live write records it
        await table.on_rebalance(
            assigned={TP(changelog, 2), TP(changelog, 5)},
            revoked={TP(changelog, 1), TP("changelog-test-other", 2)},
            newly_assigned=set(),
        )
        return dict(store.data)

    left = asyncio.run(main())
    assert set(left) == {b"dev-c", b"dev-d"}
    assert left[b"dev-c"] == {"state": "dev-c"}


def test_forgetting_touches_only_stores_that_know_partitions() -> None:
    class Store:
        def __init__(self) -> None:
            self.data = {b"k": 1, b"j": 2}
            self._key_partition = {b"k": 3, b"j": 4}

    store = Store()
    assert forget_partitions(store, {3}) == 1
    assert store.data == {b"j": 2} and store._key_partition == {b"j": 4}
    assert forget_partitions(store, set()) == 0
    assert forget_partitions(object(), {4}) == 0
