// The audit archive in the distributed shape (LLMGW_USAGE_QUEUE=redis): two gateway replicas
// sharing PostgreSQL, Redis and one S3 bucket (s3rver behind tests/integration/s3.mjs's
// checking front). Each replica's audit log pushes its spooled records to the Redis audit
// queue; each replica's drain worker takes batches from it and uploads them as objects. One
// replica is killed with SIGKILL under load while it holds a taken batch that it cannot upload
// (the store is down); the other hands that batch over whole and uploads it under the dead
// replica's object name once the store is back, and the killed replica, restarted, pushes
// what its spools still held. Every acknowledged request has exactly one audit record across
// all objects, none twice; every object is gzip JSON Lines named as specified.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

import {
  OpenAIMock, startGateway, standardConfig, chat, chatBody, waitUntil, sleep,
  TEST_JWT_SECRET,
} from './harness.mjs';
import { RedisServer, pgSchema, redisCommand } from './services.mjs';
import { startS3 } from './s3.mjs';

const T = { timeout: 180_000 };
const MASTER_KEY = 'cd'.repeat(32);
const PREFIX = 'llmgw:audit:';
const FLUSH_SIZE = 20;
const LEASE_MS = 2_000;  // the smallest LLMGW_USAGE_LEASE_MS takes; it is the audit queue's too
const NAME_RE = /^logs\/\d{4}\/\d{2}\/\d{2}\/(gw-[ab])-\d{8}T\d{6}Z-\d{9}\.jsonl\.gz$/;

let mock;
let redis;
let pg;
let s3;
const gws = {};

function env(pod) {
  return {
    DATABASE_URL: pg.url,
    REDIS_ADDRESS: `127.0.0.1:${redis.port}`,
    LLMGW_USAGE_QUEUE: 'redis',
    LLMGW_USAGE_LEASE_MS: String(LEASE_MS),
    LLMGW_USAGE_FLUSH_MS: '50',
    ADMIN_JWT_SECRET: TEST_JWT_SECRET,
    LLMGW_MASTER_KEY: MASTER_KEY,
    POD_NAME: pod,
    LOGGING_BODIES: 'metadata',
    LOGGING_SINK_FLUSH_SIZE: String(FLUSH_SIZE),
    LOGGING_SINK_FLUSH_INTERVAL: '1s',
    ...s3.env,
  };
}

before(async () => {
  mock = new OpenAIMock();
  await mock.start();
  redis = await new RedisServer().start();
  pg = await pgSchema();
  s3 = await startS3({ bucket: 'audit', prefix: 'logs/' });
  const config = standardConfig(mock.baseUrl);
  gws.a = await startGateway({ config, env: env('gw-a'), mockKey: mock.apiKey, keys: { main: {} } });
  gws.b = await startGateway({ config, env: env('gw-b'), mockKey: mock.apiKey });
});

after(async () => {
  for (const gw of Object.values(gws)) await gw?.cleanup();
  await redis?.cleanup();
  await pg?.drop().catch(() => {});
  await s3?.close();
  await mock?.stop();
});

/** An integer reply of Redis (`EXISTS k`, `LLEN k`). */
async function redisInt(line) {
  const reply = await redisCommand(redis.port, line);
  const m = /^:(-?\d+)\r\n$/.exec(reply);
  assert.ok(m, `redis ${line}: ${JSON.stringify(reply)}`);
  return Number(m[1]);
}

const replicaId = async (gw) => (await fsp.readFile(path.join(gw.dataDir, 'replica.id'), 'utf8')).trim();

/** Every object in the bucket: {name, records}; each must be gzip of JSON Lines. */
async function objects() {
  const out = [];
  for (const name of await s3.list('logs/')) {
    const bytes = await s3.get(name);
    assert.ok(bytes, `${name} listed but not readable`);
    const text = zlib.gunzipSync(bytes).toString('utf8');
    assert.ok(text.endsWith('\n'), `${name}: JSON Lines end with a newline`);
    out.push({ name, records: text.slice(0, -1).split('\n').map((l) => JSON.parse(l)) });
  }
  return out;
}

function countById(objs) {
  const m = new Map();
  for (const o of objs) for (const r of o.records) {
    m.set(r.client_request_id, (m.get(r.client_request_id) ?? 0) + 1);
  }
  return m;
}

test('two replicas, one killed holding a taken batch: every acknowledged request archived exactly once', T, async (t) => {
  const key = gws.a.keys.main.key;
  const repA = await replicaId(gws.a);
  const acked = new Set();
  let n = 0;
  let aDead = false;
  // Clients alternate between the replicas; a call to a dead replica is not acknowledged.
  const load = async (until) => {
    while (n < until) {
      const i = n++;
      const gw = i % 2 === 0 || aDead ? gws.b : gws.a;
      const id = `d${i}`;
      try {
        const r = await chat(gw.port, key, chatBody('gpt-4o-mini', `audit ${id}`), { headers: { 'x-request-id': id } });
        if (r.status === 200) acked.add(id);
        else assert.ok(gw === gws.a, `replica b answered ${r.status}: ${r.text}`);
      } catch (e) {
        if (gw !== gws.a) throw e;  // only the killed replica may drop a call
      }
    }
  };

  // The store is down: batches are taken and stay taken.
  await s3.stop();
  await Promise.all(Array.from({ length: 6 }, () => load(160)));
  await waitUntil(async () => await redisInt(`EXISTS ${PREFIX}taken:${repA}`) === 1, 20_000,
    'replica a holds a taken batch');

  // Kill replica a under load, while it holds its batch.
  const more = Promise.all(Array.from({ length: 6 }, () => load(320)));
  while (n < 200 || await redisInt(`EXISTS ${PREFIX}taken:${repA}`) !== 1) await sleep(5);
  await gws.a.kill();
  aDead = true;
  assert.equal(gws.a.exit.signal, 'SIGKILL');
  const held = /^\$\d+\r\n(.*)\r\n$/.exec(await redisCommand(redis.port, `LINDEX ${PREFIX}taken:${repA} 0`))?.[1];
  assert.match(held ?? '', NAME_RE, 'replica a died holding a taken batch');
  await more;

  // The store is back. Replica b takes a's batch away when the lease ends and uploads it whole,
  // under the name a gave it, while a is still dead.
  await s3.restart();
  await waitUntil(async () => (await objects()).some((o) => o.name === held), 30_000,
    `the batch replica a held (${held}), uploaded by replica b`);
  assert.equal(gws.a.exit.signal, 'SIGKILL', 'a is still dead');
  assert.equal(await redisInt(`EXISTS ${PREFIX}taken:${repA}`), 0, 'a\'s batch was taken away from it');

  // Replica b archives all that Redis holds; what is missing then was in a's spools only.
  const repB = await replicaId(gws.b);
  await waitUntil(async () => await redisInt(`LLEN ${PREFIX}queue`) === 0 &&
    await redisInt(`LLEN ${PREFIX}orphans`) === 0 && await redisInt(`EXISTS ${PREFIX}taken:${repB}`) === 0,
  30_000, 'the Redis audit queue drained by replica b');
  const beforeRestart = countById(await objects()).size;

  // Replica a restarts: what its spools held when it died is pushed and archived.
  await gws.a.serve();
  let missing = [];
  try {
    await waitUntil(async () => {
      const counts = countById(await objects());
      missing = [...acked].filter((id) => !counts.has(id));
      return missing.length === 0;
    }, 40_000, 'a record for every acknowledged request');
  } catch (e) {
    // Even ids went to b; odd ids to a until it was killed (around the 200th call).
    const ids = missing.map((id) => `'${id}'`).join(',');
    const rows = await pg.query(`SELECT count(*) FROM usage_records WHERE client_request_id IN (${ids})`);
    assert.fail(`${e.message}: no record of ${missing.join(', ')} (usage rows of them: ${rows})`);
  }
  // A clean stop leaves nothing in Redis: no queued, taken or orphaned batch.
  for (const gw of [gws.a, gws.b]) {
    await gw.stop();
    assert.equal(gw.exit.code, 0, gw.stderr.slice(-2000));
  }
  assert.equal(await redisInt(`LLEN ${PREFIX}queue`), 0);
  assert.equal(await redisInt(`LLEN ${PREFIX}orphans`), 0);
  assert.equal(await redisInt(`EXISTS ${PREFIX}taken:${repA} ${PREFIX}taken:${repB}`), 0);

  assert.ok(acked.size >= 250, `acknowledged ${acked.size}`);
  const objs = await objects();
  const counts = countById(objs);
  for (const id of acked) assert.equal(counts.get(id), 1, `exactly one record for ${id}`);
  for (const [id, c] of counts) assert.equal(c, 1, `${id} archived ${c} times`);
  const pods = new Set();
  for (const o of objs) {
    const m = NAME_RE.exec(o.name);
    assert.ok(m, `object name ${o.name}`);
    pods.add(m[1]);
    assert.ok(o.records.length >= 1 && o.records.length <= FLUSH_SIZE, `${o.name}: ${o.records.length} records`);
    for (const r of o.records) {
      assert.equal(r.bodies, 'metadata');
      assert.equal(r.request, undefined);
    }
  }
  assert.deepEqual([...pods].sort(), ['gw-a', 'gw-b'], 'both replicas named objects');
  t.diagnostic(`${acked.size} of ${n} calls acknowledged, ${counts.size} records in ${objs.length} objects; ` +
    `a died holding ${held} (${objs.find((o) => o.name === held).records.length} records); ` +
    `${counts.size - beforeRestart} records were only in a's spools`);
});
