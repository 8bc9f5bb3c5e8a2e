"""ClickHouse adapters: the `clickhouse` settings section, the client
connection and the key store of crypto-shredding."""
