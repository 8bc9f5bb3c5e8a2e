-- The shared key store of crypto-shredding (candor/keys.py). One row per data
-- key: the key itself only wrapped (AES-256-GCM) under the master key from the
-- settings, bound to key_id and subject_id. Written only by the admin CLI
-- (`candor consent grant` creates a subject's key, `candor erase` destroys it);
-- read by stream workers and sinks. Destruction is a synchronous mutation that
-- empties wrapped_key and sets destroyed = 1: the row stays as a tombstone so a
-- ciphertext under that key reads "erased", not "unknown". No TTL: a key lives
-- as long as any copy of the content it protects.
CREATE TABLE IF NOT EXISTS {db}.subject_keys {on_cluster}
(
    subject_id String,
    key_id String,
    wrapped_key String,
    created_at DateTime64(6, 'UTC'),
    created_by String,
    destroyed UInt8 DEFAULT 0,
    destroyed_at Nullable(DateTime64(6, 'UTC'))
)
ENGINE = MergeTree
ORDER BY (subject_id, key_id)
-- shard_key: cityHash64(subject_id)
;

-- A value only the right master key opens: a process with another master key
-- stops before it writes a key nobody else can unwrap. The oldest row counts.
CREATE TABLE IF NOT EXISTS {db}.key_store_check {on_cluster}
(
    created_at DateTime64(6, 'UTC') DEFAULT now64(6),
    check_value String
)
ENGINE = MergeTree
ORDER BY created_at
;
