-- Dead letters per event of a device batch.
--
-- Since DeviceBatch records, one capture.events record holds many events, and
-- the worker dead-letters a bad event of a good batch alone (headers batch_id
-- and event_index). 0001 keyed dead_letters by (original topic, partition,
-- offset, reason): two events of one record refused for the same reason
-- replaced each other. event_number (the event's position in its batch, from
-- 1; 0 when the whole record was refused, as for every row landed before)
-- joins the key. A sorting key may only grow by a column added in the same
-- ALTER, without a default expression: the new column defaults to 0.

ALTER TABLE {db}.dead_letters{local} {on_cluster}
    ADD COLUMN IF NOT EXISTS event_number UInt32,
    MODIFY ORDER BY (original_topic, original_partition, original_offset, reason, event_number)
;

-- Under a cluster the Distributed table gets the column too (on one node the
-- statement above added it already: nothing to do).
ALTER TABLE {db}.dead_letters {on_cluster} ADD COLUMN IF NOT EXISTS event_number UInt32
;
