"""Serve the ClickHouse engine from the `chdb-core` wheel over HTTP and native TCP.

`chdb-core` ships the ClickHouse engine as a library, not a `clickhouse-server`
binary. Its one-shot query entry runs a full LocalServer on a persistent data
directory; ClickHouse 26.x lets that server open its HTTP and TCP listeners
(`SYSTEM START LISTEN`), with ports and `listen_host` read from `config.xml`
in the working directory. A long query (`sleepEachRow` over a huge `numbers`)
keeps the server alive; `KILL QUERY` of that query, sent by
`deploy/local/clickhouse.sh stop`, ends it cleanly with parts flushed.

Run: python clickhouse_server.py --dir DIR --http-port 8123 --tcp-port 9000
Blocks until the serving query is killed. Exit code 0 on a clean stop.

One shard of a cluster (`deploy/local/clickhouse_cluster.sh`): ``--cluster NAME
--shards 127.0.0.1:19000,127.0.0.1:19001 --shard I`` adds ``remote_servers``
(one replica per shard, reached over the native port), the ``{cluster}``,
``{shard}`` and ``{replica}`` macros, and ``distributed_foreground_insert = 1``
to the default profile: this engine never sends a Distributed table's
background queue, so an insert must reach the shards before it returns.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from schemas.extras import MissingExtra

# Import before changing directory: importing chdb starts a throwaway in-memory
# engine, which must not pick up our config.xml.
try:
    import chdb._chdb as engine  # type: ignore[import-not-found, unused-ignore]
except ModuleNotFoundError as err:  # the core install runs without the local extra
    raise MissingExtra.of(err, "local", "the local stack's ClickHouse") from err

SERVE_TAG = "candor-clickhouse-serve"

CONFIG = """<clickhouse>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <max_concurrent_queries>200</max_concurrent_queries>
  <background_pool_size>8</background_pool_size>
  <!-- Users and roles (the chdb engine reads them only from configuration: it has
       no writable access storage). default keeps every right and may manage
       access; candor_analyst may read the analyst views (analyst_<db>.*) and
       nothing else; candor_analyst_user holds it, password candor-analyst-local
       (local stack only). -->
  <user_directories><users_xml><path>config.xml</path></users_xml></user_directories>
  <profiles><default>{profile}</default></profiles>
  <quotas><default/></quotas>
  <users>
    <default>
      <password></password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <access_management>1</access_management>
      <named_collection_control>1</named_collection_control>
    </default>
    <candor_analyst_user>
      <password_sha256_hex>a34721846082757d04e005be23703e322765129c16daab64afc8b07056a16283</password_sha256_hex>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <grants><query>GRANT candor_analyst</query></grants>
    </candor_analyst_user>
  </users>
  <roles>
    <candor_analyst>
      <grants><query>GRANT SELECT ON analyst_*.*</query></grants>
    </candor_analyst>
  </roles>
{cluster}  <logger>
    <level>warning</level>
    <console>0</console>
    <log>{dir}/clickhouse.log</log>
    <errorlog>{dir}/clickhouse.err.log</errorlog>
    <size>50M</size>
    <count>2</count>
  </logger>
</clickhouse>
"""

SERVE_SQL = f"""SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP;
SELECT sum(sleepEachRow(1)) FROM numbers(1000000000000)
SETTINGS function_sleep_max_microseconds_per_block = 0, max_block_size = 1,
         max_execution_time = 0, log_comment = '{SERVE_TAG}'"""


def cluster_config(name: str, shards: list[str], shard: int) -> str:
    """The ``remote_servers`` and ``macros`` of shard ``shard`` (1-based) of cluster ``name``,
    whose shards are ``host:native_port`` each, one replica per shard."""
    if not 1 <= shard <= len(shards):
        raise SystemExit(f"--shard {shard} is outside 1..{len(shards)}")
    parts = []
    for address in shards:
        host, _, port = address.rpartition(":")
        replica = f"<replica><host>{host}</host><port>{port}</port></replica>"
        parts.append(f"      <shard>{replica}</shard>")
    body = "\n".join(parts)
    return (
        f"  <remote_servers>\n    <{name}>\n{body}\n    </{name}>\n  </remote_servers>\n"
        f"  <macros><cluster>{name}</cluster><shard>{shard}</shard>"
        f"<replica>{shards[shard - 1]}</replica></macros>\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path, help="server state directory")
    parser.add_argument("--http-port", type=int, default=8123)
    parser.add_argument("--tcp-port", type=int, default=9000)
    parser.add_argument("--cluster", help="cluster name, for one shard of a cluster")
    parser.add_argument("--shards", default="", help="every shard's host:native_port, in order")
    parser.add_argument("--shard", type=int, default=1, help="this server's shard (1-based)")
    args = parser.parse_args()
    cluster, profile = "", ""
    if args.cluster:
        cluster = cluster_config(args.cluster, [a for a in args.shards.split(",") if a], args.shard)
        profile = "<distributed_foreground_insert>1</distributed_foreground_insert>"

    state = args.dir.resolve()
    data = state / "data"
    # A brand-new data directory lacks tmp/, and HTTP requests then fail.
    (data / "tmp").mkdir(parents=True, exist_ok=True)
    (state / "config.xml").write_text(
        CONFIG.format(
            http_port=args.http_port,
            tcp_port=args.tcp_port,
            dir=state,
            cluster=cluster,
            profile=profile,
        )
    )
    os.chdir(state)
    try:
        # TabSeparated: the server's output format becomes the HTTP default, and
        # clickhouse-connect's handshake expects TabSeparated.
        engine.query(SERVE_SQL, "TabSeparated", path=str(data))  # type: ignore[attr-defined]
    except Exception as err:  # the serving query ends by being killed
        if "QUERY_WAS_CANCELLED" in str(err) or "cancelled" in str(err).lower():
            print("clickhouse: serving query killed, engine stopped", file=sys.stderr)
            return 0
        print(f"clickhouse: engine stopped with an error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
