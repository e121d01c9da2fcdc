// BullMQ worker peer for the end-to-end scenario: the seed's worker (src/worker.ts of
// psi-router-webhook-queue.md: queue 'messages', concurrency 10, a line logged per completed
// job) with the handler every system runs there, one Redis INCR of a counter the benchmark
// polls. Left out: the seed's limiter (100 jobs/s), which would measure the limiter.
// Started by bench/peers/bullmq.py; environment: BULL_PREFIX, REDIS_HOST, REDIS_PORT, REDIS_DB,
// COUNTER (the key to INCR), CONCURRENCY (default 10). Prints "ready" once it consumes. Completed
// jobs are removed (removeOnComplete), as a deployment at volume sets; the seed keeps them.
'use strict';

const { Worker } = require('bullmq');
const Redis = require('ioredis');

const connection = {
  host: process.env.REDIS_HOST || '127.0.0.1',
  port: Number(process.env.REDIS_PORT || 6379),
  db: Number(process.env.REDIS_DB || 0),
  maxRetriesPerRequest: null, // what BullMQ requires of a worker's (blocking) connection
};
const counter = new Redis(connection);
const key = process.env.COUNTER;

const worker = new Worker(
  'messages',
  async () => {
    await counter.incr(key);
  },
  {
    connection,
    prefix: process.env.BULL_PREFIX,
    concurrency: Number(process.env.CONCURRENCY || 10),
    removeOnComplete: { count: 0 },
  },
);

worker.on('completed', (job) => {
  console.log(`completed ${job.id}`);
});
worker.on('failed', (job, err) => {
  console.error(`failed ${job && job.id}: ${err && err.message}`);
});

worker.waitUntilReady().then(() => process.stderr.write('ready\n'), (err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});

process.once('SIGTERM', async () => {
  setTimeout(() => process.exit(0), 3000).unref();
  await worker.close().catch(() => {});
  await counter.quit().catch(() => {});
  process.exit(0);
});
