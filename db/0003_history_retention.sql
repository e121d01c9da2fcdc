-- Retention (DRIP_HISTORY_RETENTION, `drip db prune`) deletes finished rows oldest first, in
-- small batches; `drip status` reads the lateness of recent releases. Both find their rows
-- through this index on when a finished message finished: unfinished rows stay out of it, so no
-- retention can reach them whatever their age (and counting what a prune would remove is an
-- index-only scan).
SET LOCAL maintenance_work_mem = '256MB';
CREATE INDEX sequential_queue_finished ON sequential_queue (finished_at) WHERE status IN ('done', 'dead', 'cancelled');
-- No query drip runs reads the whole table newest first: a queue's history, a workflow's
-- timeline and a message by id each have their own index. Dropping it saves every insert an
-- index entry and every row its share of the index.
DROP INDEX sequential_queue_run_at;
