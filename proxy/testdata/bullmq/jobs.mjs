// jobs.mjs: BullMQ 5 (through ioredis) as an application uses it, run by
// proxy/apps_bullmq_test.go straight to a redis-server and through the
// proxy. It adds JOBS jobs to a Queue (every tenth delayed, some with a
// priority), one job that fails once and succeeds when retried, one
// that fails both of its two attempts and a flow (a FlowProducer's
// MULTI/EXEC) of a parent job and three children, processes them with a
// Worker of
// concurrency 5, waits until the Worker and a QueueEvents (XREAD BLOCK on
// the queue's event stream) have seen every job end, and prints one JSON
// object of counts. It exits 1 with what it saw so far and the first
// errors a second after BullMQ reports an error (an application sees its
// Redis fail), or when the jobs take longer than DEADLINE_MS.
//
// Environment: REDIS_HOST, REDIS_PORT, BULL_PREFIX (BullMQ's key prefix;
// "{bull}" puts every key of a queue on one server of a pool with
// hash_tag "{}"), JOBS (default 200), DEADLINE_MS (default 45000).
import { FlowProducer, Queue, Worker, QueueEvents } from 'bullmq';

const env = process.env;
const total = Number(env.JOBS || 200);
const prefix = env.BULL_PREFIX || 'bull';
const deadlineMs = Number(env.DEADLINE_MS || 45000);
const started = Date.now();

let stage = 'connect';
let finish;
const done = new Promise((resolve) => { finish = resolve; });

// fail prints what was seen, why the run failed and the first errors,
// and exits 1.
function fail(why) {
  const out = { ...seen, ok: false, stage, why, errors, seconds: (Date.now() - started) / 1000 };
  console.log(JSON.stringify(out));
  process.exit(1);
}
setTimeout(() => fail(`not done after ${deadlineMs} ms`), deadlineMs).unref();

const errors = [];
function noteError(where, err) {
  const msg = `${where}: ${err && err.message ? err.message : err}`;
  if (errors.length < 10 && !errors.includes(msg)) {
    errors.push(msg);
  }
  if (errors.length === 1) {
    setTimeout(() => fail('BullMQ reported an error'), 1000);
  }
}

// maxRetriesPerRequest null is what a Worker requires; a connection that
// drops is retried quickly, and the deadline below ends the run.
const connection = {
  host: env.REDIS_HOST || '127.0.0.1',
  port: Number(env.REDIS_PORT || 6379),
  maxRetriesPerRequest: null,
  retryStrategy: () => 200,
};
const name = 'apps';
const queue = new Queue(name, { connection, prefix });
const events = new QueueEvents(name, { connection, prefix, blockingTimeout: 1000 });
queue.on('error', (err) => noteError('queue', err));
events.on('error', (err) => noteError('queue events', err));

const seen = {
  completed: 0, failed: 0, failedAttempts: 0, retried: 0, checksum: 0,
  eventsCompleted: 0, eventsFailed: 0, progress: 0,
};
events.on('completed', () => { seen.eventsCompleted++; });
events.on('failed', () => { seen.eventsFailed++; });
events.on('progress', () => { seen.progress++; });

// Every job that ends completed: JOBS, the flaky one, the flow's parent
// and its children.
const flowChildren = 3;
const wantCompleted = total + 1 + 1 + flowChildren;
function check() {
  if (seen.completed === wantCompleted && seen.failed === 1 &&
      seen.eventsCompleted === wantCompleted && seen.eventsFailed === 1) {
    finish();
  }
}

async function work(job) {
  if (job.name === 'flaky' && job.attemptsMade === 0) {
    throw new Error('flaky: first attempt fails');
  }
  if (job.name === 'doomed') {
    throw new Error('doomed: every attempt fails');
  }
  if (job.name === 'parent') {
    const values = Object.values(await job.getChildrenValues());
    return values.reduce((a, b) => a + b, 0);
  }
  if (job.data.n % 50 === 0) {
    await job.updateProgress(50);
    await job.log(`job ${job.data.n} half done`);
  }
  return job.data.n * job.data.n;
}

async function main() {
  await events.waitUntilReady();
  stage = 'add';
  await queue.waitUntilReady();
  const bulk = [];
  for (let n = 0; n < total; n++) {
    const opts = {};
    if (n % 10 === 0) {
      opts.delay = 200 + (n % 7) * 50;
    } else if (n % 25 === 1) {
      opts.priority = 1 + (n % 3);
    }
    bulk.push({ name: 'add', data: { n }, opts });
  }
  // Half in one addBulk (a MULTI of many scripts), half one by one.
  const half = Math.floor(total / 2);
  const added = await queue.addBulk(bulk.slice(0, half));
  for (const j of bulk.slice(half)) {
    await queue.add(j.name, j.data, j.opts);
  }
  const retry = { attempts: 2, backoff: { type: 'fixed', delay: 100 } };
  await queue.add('flaky', { n: 1000 }, retry);
  await queue.add('doomed', { n: 1001 }, retry);
  const flows = new FlowProducer({ connection, prefix });
  flows.on('error', (err) => noteError('flow producer', err));
  const children = [];
  for (let i = 0; i < flowChildren; i++) {
    children.push({ name: 'add', queueName: name, data: { n: 2000 + i } });
  }
  await flows.add({ name: 'parent', queueName: name, data: { n: 3000 }, children });
  await flows.close();

  stage = 'work';
  const worker = new Worker(name, work, { connection, prefix, concurrency: 5 });
  worker.on('error', (err) => noteError('worker', err));
  worker.on('completed', (job, result) => {
    seen.completed++;
    seen.checksum += result;
    if (job.attemptsMade > 1) {
      seen.retried++;
    }
    check();
  });
  worker.on('failed', (job) => {
    seen.failedAttempts++;
    if (job && job.attemptsMade >= job.opts.attempts) {
      seen.failed++;
    }
    check();
  });
  // Events may come before the last worker event, or after it.
  events.on('completed', check);
  events.on('failed', check);

  await done;
  stage = 'results';
  const out = { ...seen, ok: true };
  out.counts = await queue.getJobCounts('completed', 'failed', 'delayed', 'wait', 'active', 'prioritized');
  const failedJobs = await queue.getFailed();
  out.failedReasons = failedJobs.map((j) => j.failedReason);
  // A MULTI of LRANGE and LLEN.
  out.logs = (await queue.getJobLogs(added[0].id)).logs;
  stage = 'close';
  await worker.close();
  await events.close();
  await queue.close();
  out.seconds = (Date.now() - started) / 1000;
  console.log(JSON.stringify(out));
  process.exit(0);
}

main().catch((err) => {
  errors.unshift(`${stage}: ${err && err.message ? err.message : err}`);
  fail('an operation failed');
});
