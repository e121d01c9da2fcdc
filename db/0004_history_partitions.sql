-- The history partitioned by day of acceptance (drip/db/partitions.py): ids are UUIDv7, so a
-- range of ids is a range of acceptance times and the id stays the one key. The recorder writes
-- into today's partition, whose indexes stay small however long the history grows, and retention
-- drops a day whose rows are all finished and old instead of deleting them row by row.
--
-- The rows already here are kept where they are: the old table becomes the partition of every id
-- before tomorrow (no row is copied; attaching it reads it once to check its bounds), and
-- retention empties it batch by batch like any partition holding rows to keep. Rows of any other
-- id (none, unless a host's clock ran ahead) go to the default partition. An empty old table is
-- simply dropped.
LOCK TABLE sequential_queue IN ACCESS EXCLUSIVE MODE;
ALTER TABLE sequential_queue RENAME TO sequential_queue_legacy;
ALTER INDEX sequential_queue_pkey RENAME TO sequential_queue_legacy_pkey;
ALTER INDEX sequential_queue_workflow RENAME TO sequential_queue_legacy_workflow;
ALTER INDEX sequential_queue_queue RENAME TO sequential_queue_legacy_queue;
ALTER INDEX sequential_queue_finished RENAME TO sequential_queue_legacy_finished;
CREATE TABLE sequential_queue (LIKE sequential_queue_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (id);
ALTER TABLE sequential_queue ADD PRIMARY KEY (id);
CREATE INDEX sequential_queue_workflow ON sequential_queue (location_id, workflow_id, run_at DESC);
CREATE INDEX sequential_queue_queue ON sequential_queue (queue, run_at);
CREATE INDEX sequential_queue_finished ON sequential_queue (finished_at) WHERE status IN ('done', 'dead', 'cancelled');
-- Whether a day still holds a row retention must keep is one probe of this index (rows of
-- messages in flight only: it stays small).
CREATE INDEX sequential_queue_unfinished ON sequential_queue (id) WHERE status NOT IN ('done', 'dead', 'cancelled');
CREATE TABLE sequential_queue_default PARTITION OF sequential_queue DEFAULT;
DO $$
DECLARE
    -- The first id of tomorrow (UTC): a UUIDv7 is its millisecond time in 48 bits, then the rest.
    tomorrow uuid := (lpad(to_hex((extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC')
                      + interval '1 day') * 1000)::bigint), 12, '0') || repeat('0', 20))::uuid;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM sequential_queue_legacy) THEN
        DROP TABLE sequential_queue_legacy;
        RETURN;
    END IF;
    INSERT INTO sequential_queue_default SELECT * FROM sequential_queue_legacy WHERE id >= tomorrow;
    DELETE FROM sequential_queue_legacy WHERE id >= tomorrow;
    SET LOCAL maintenance_work_mem = '256MB';
    CREATE INDEX sequential_queue_legacy_unfinished ON sequential_queue_legacy (id)
        WHERE status NOT IN ('done', 'dead', 'cancelled');
    EXECUTE format('ALTER TABLE sequential_queue ATTACH PARTITION sequential_queue_legacy'
                   ' FOR VALUES FROM (MINVALUE) TO (%L)', tomorrow);
END $$;
