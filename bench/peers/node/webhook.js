// BullMQ webhook peer: Express + one queue.add per request, the seeds' way of taking webhooks.
// Started by bench/peers/bullmq.py; environment: PORT, BULL_PREFIX, REDIS_HOST, REDIS_PORT, REDIS_DB,
// WORKERS (default 1, the seed's way; more: node:cluster processes sharing the port, to compare
// with `drip web --processes N`).
//
// The handler follows the "Webhook Mínimo con Cola" (src/webhook.ts) of the seed
// psi-router-webhook-queue.md, the one seed that shows the code of an Express + BullMQ
// webhook; ghl-drip-server-redis-streams.md describes the same shape (an enqueue endpoint in
// front of BullMQ, later replaced by Redis Streams) without its code. Kept: express.json(),
// one shared ioredis connection for the Queue, minimal validation answered with 400, the
// job data plus an ISO timestamp, 200 JSON as the answer (here with the job id), 500 on error.
// Added: a JSON array of such messages, checked alike and added in one addBulk (the end-to-end
// scenario posts arrays of 500 to every system).
// Left out, because this measures the webhook's hot path and nothing else: Supabase and
// other external calls, the worker (a separate process in the seed, with its own limiter),
// logging per request, nginx and its rate limit in front.
// Jobs are not removed by anyone while it runs: bullmq.py deletes every key under the
// prefix after the server stops.
'use strict';

const cluster = require('node:cluster');
const express = require('express');
const { Queue } = require('bullmq');
const Redis = require('ioredis');

const port = Number(process.env.PORT || 3002);
const prefix = process.env.BULL_PREFIX || 'bench-bull-webhook';

const redis = new Redis({
  host: process.env.REDIS_HOST || '127.0.0.1',
  port: Number(process.env.REDIS_PORT || 6379),
  db: Number(process.env.REDIS_DB || 0),
});
const messageQueue = new Queue('messages', { connection: redis, prefix });

const app = express();
app.use(express.json({ limit: '5mb' })); // an array of 500 messages is ~20 KB; express's default is 100 KB

app.post('/enqueue', async (req, res) => {
  try {
    const body = req.body;
    if (Array.isArray(body)) {
      // An array of messages (the end-to-end scenario posts arrays, as it does to drip): the seed's
      // check on each, then one addBulk, BullMQ's one round trip for many jobs.
      if (body.length === 0 || body.some((m) => !m || typeof m !== 'object' || !m.payload)) {
        return res.status(400).json({ error: 'Invalid payload' });
      }
      const timestamp = new Date().toISOString();
      const jobs = await messageQueue.addBulk(
        body.map((m) => ({ name: 'process-message', data: { ...m, timestamp } })),
      );
      return res.status(200).json({ success: true, ids: jobs.map((j) => j.id) });
    }
    if (!body || typeof body !== 'object' || !body.payload) {
      return res.status(400).json({ error: 'Invalid payload' });
    }
    const job = await messageQueue.add('process-message', {
      ...body,
      timestamp: new Date().toISOString(),
    });
    return res.status(200).json({ success: true, id: job.id });
  } catch (error) {
    console.error('Error en webhook:', error);
    return res.status(500).json({ error: 'Internal server error' });
  }
});

async function main() {
  await messageQueue.waitUntilReady();
  const server = await new Promise((resolve, reject) => {
    const s = app.listen(port, '127.0.0.1', (err) => (err ? reject(err) : resolve(s)));
  });
  if (!cluster.isWorker) process.stdout.write('listening\n');

  process.once('SIGTERM', async () => {
    // Keep-alive connections from a load generator would hold server.close() open forever.
    server.close();
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 3000).unref();
    await messageQueue.close().catch(() => {});
    await redis.quit().catch(() => {});
    process.exit(0);
  });
}

function fail(err) {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}

const workers = Number(process.env.WORKERS || 1);
if (workers > 1 && cluster.isPrimary) {
  // The primary only forks and relays: "listening" once every worker listens; SIGTERM to each.
  let listening = 0;
  let stopping = false;
  for (let i = 0; i < workers; i += 1) {
    cluster.fork().on('listening', () => {
      listening += 1;
      if (listening === workers) process.stdout.write('listening\n');
    });
  }
  cluster.on('exit', (worker, code) => {
    if (!stopping && code !== 0) fail(new Error(`worker ${worker.process.pid} exited with ${code}`));
  });
  process.once('SIGTERM', () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 4000).unref();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers).length === 0) process.exit(0);
    });
  });
} else {
  main().catch(fail);
}
