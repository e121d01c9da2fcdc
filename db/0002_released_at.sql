-- When a message's successful attempt started: for a dripped GoHighLevel contact,
-- the actual release, to compare with its planned run_at (delay accuracy).
ALTER TABLE sequential_queue ADD COLUMN released_at timestamptz;
