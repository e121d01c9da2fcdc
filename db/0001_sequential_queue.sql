-- History of every message drip accepted: one row per message, written in
-- batches by the recorder from the events the Redis scripts emit.
CREATE TABLE sequential_queue (
    id           uuid PRIMARY KEY,
    queue        text        NOT NULL,
    location_id  text,
    workflow_id  text,
    contact_id   text,
    payload      jsonb,
    status       text        NOT NULL
                 CHECK (status IN ('scheduled', 'queued', 'done', 'failed', 'dead', 'cancelled')),
    run_at       timestamptz NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text,
    enqueued_at  timestamptz NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz
);

-- "latest by run_at" (SELECT * FROM sequential_queue ORDER BY run_at DESC LIMIT 10)
CREATE INDEX sequential_queue_run_at ON sequential_queue (run_at DESC);
-- "by workflow": a location's workflow, newest first
CREATE INDEX sequential_queue_workflow ON sequential_queue (location_id, workflow_id, run_at DESC);
-- one queue's history in order
CREATE INDEX sequential_queue_queue ON sequential_queue (queue, run_at);
