// BullMQ throughput peer: one run, messages per second from the first add to the last
// job completed, with a no-op processor. Driven by bench/peers/bullmq.py.
//
//   node throughput.js --host 127.0.0.1 --port 6379 --db 0 --queues 1000 --per-queue 20 \
//       [--concurrency 10] [--prefix bench-bull-<hex>] [--timeout-s 600]
//
// Prints exactly one JSON line on stdout: {"msgs_per_s": .., "n": .., "seconds": ..}.
// Everything it writes lives under its own BullMQ prefix and is deleted before it exits,
// whether the run succeeded or not (Redis db 0 is shared with other projects).
//
// BullMQ has no notion of a per-key queue: the Q "queues" are only a field in the job data,
// all jobs share one BullMQ queue, and the worker's concurrency runs them in any order.
'use strict';

const crypto = require('node:crypto');
const { parseArgs } = require('node:util');
const { Queue, Worker } = require('bullmq');
const Redis = require('ioredis');

const CHUNK = 1000; // jobs per addBulk call: one round trip each, without building one huge script call

function options() {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '6379' },
      db: { type: 'string', default: '0' },
      queues: { type: 'string', default: '1000' },
      'per-queue': { type: 'string', default: '20' },
      concurrency: { type: 'string', default: '10' },
      prefix: { type: 'string', default: `bench-bull-${crypto.randomBytes(4).toString('hex')}` },
      'timeout-s': { type: 'string', default: '600' },
    },
  });
  return {
    // maxRetriesPerRequest: null is what BullMQ requires of a worker's (blocking) connection.
    connection: {
      host: values.host,
      port: Number(values.port),
      db: Number(values.db),
      maxRetriesPerRequest: null,
    },
    queues: Number(values.queues),
    perQueue: Number(values['per-queue']),
    concurrency: Number(values.concurrency),
    prefix: values.prefix,
    timeoutMs: Number(values['timeout-s']) * 1000,
  };
}

/** Job specs interleaved across queues (for n in range(P): for q in range(Q)), as drip's bench enqueues. */
function* jobs(queues, perQueue) {
  const opts = { removeOnComplete: true, removeOnFail: true };
  for (let n = 0; n < perQueue; n++) {
    for (let q = 0; q < queues; q++) {
      yield { name: 'msg', data: { queue: `q${q}`, n }, opts };
    }
  }
}

/** Resolves when the worker has completed `total` jobs; rejects on the first failure or at the deadline. */
function allCompleted(worker, total, timeoutMs) {
  return new Promise((resolve, reject) => {
    let done = 0;
    const timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms with ${done}/${total} jobs completed`)),
      timeoutMs,
    );
    worker.on('completed', () => {
      done += 1;
      if (done === total) {
        clearTimeout(timer);
        resolve(process.hrtime.bigint());
      }
    });
    worker.on('failed', (job, err) => {
      clearTimeout(timer);
      reject(new Error(`job ${job && job.id} failed: ${err && err.message}`));
    });
    worker.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function addAll(queue, specs) {
  let chunk = [];
  for (const spec of specs) {
    chunk.push(spec);
    if (chunk.length === CHUNK) {
      await queue.addBulk(chunk);
      chunk = [];
    }
  }
  if (chunk.length) await queue.addBulk(chunk);
}

/** Deletes every key under `prefix`, whatever obliterate left (or could not reach after a failure). */
async function deletePrefix(connection, prefix) {
  const client = new Redis({ ...connection, maxRetriesPerRequest: 3 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length) await client.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

async function main() {
  const o = options();
  const total = o.queues * o.perQueue;
  const name = 'bench';
  const queue = new Queue(name, { connection: o.connection, prefix: o.prefix });
  // The worker starts first, idle, as a running service's would be before traffic arrives.
  const worker = new Worker(name, async () => {}, {
    connection: o.connection,
    prefix: o.prefix,
    concurrency: o.concurrency,
  });
  try {
    await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
    const finished = allCompleted(worker, total, o.timeoutMs);
    finished.catch(() => {}); // awaited below; avoids an unhandled rejection while adds are in flight
    const start = process.hrtime.bigint();
    await addAll(queue, jobs(o.queues, o.perQueue));
    const end = await finished;
    const seconds = Number(end - start) / 1e9;
    process.stdout.write(`${JSON.stringify({ msgs_per_s: total / seconds, n: total, seconds })}\n`);
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
    await deletePrefix(o.connection, o.prefix);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
