// PostgreSQL going away under load, with two replicas on it (and Redis for limits, budgets and
// the usage queue): the replicas keep serving keys they know from their snapshot and caches,
// buffer the usage of every call they answered (in Redis; in their spools without the queue),
// and write all of it once the database is back; the configuration poll recovers by itself.
// Nothing crashes, no usage record is lost, not even a dead replica's.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';

import { OpenAIMock, startGateway, standardConfig, chat, chatBody, request, sleep, waitUntil, TEST_JWT_SECRET } from './harness.mjs';
import { RedisServer, privatePostgres, redisCommand } from './services.mjs';

const T = { timeout: 180_000 };
let mock;
let redis;
let pg;
let baseEnv;
const gws = [];

before(async () => {
  mock = new OpenAIMock({ anyModel: true });
  await mock.start();
  redis = await new RedisServer().start();
  pg = await privatePostgres();
  baseEnv = {
    DATABASE_URL: pg.url,
    REDIS_ADDRESS: `127.0.0.1:${redis.port}`,
    ADMIN_JWT_SECRET: TEST_JWT_SECRET,
    LLMGW_MASTER_KEY: 'cd'.repeat(32),
    LLMGW_USAGE_FLUSH_MS: '50',
    LLMGW_USAGE_LEASE_MS: '3000',
  };
  const env = baseEnv;
  gws.push(await startGateway({ config: standardConfig(mock.baseUrl), env, mockKey: mock.apiKey,
    keys: { limited: { rpm: 100000, budget: 1000 } } }));
  gws.push(await startGateway({ config: standardConfig(mock.baseUrl), env, mockKey: mock.apiKey }));
});

after(async () => {
  for (const gw of gws) await gw?.cleanup();
  await redis?.cleanup();
  await pg?.stop().catch(() => {});
  await mock?.stop();
});

async function usageRows(id) {
  return Number(await pg.query(`SELECT count(*) FROM usage_records WHERE key_id = '${id}'`));
}

test('PostgreSQL stopped and restarted mid-load: serving goes on, every answered call is recorded', T, async () => {
  const { key, id } = gws[0].keys.limited;
  // Warm both replicas' key caches and the Redis ledger (seeded from the store).
  for (const gw of gws) assert.equal((await chat(gw.port, key, chatBody('gpt-4o-mini', 'warm'))).status, 200);

  let answered = 2;
  let stop = false;
  const load = (async () => {
    for (let i = 0; !stop; i++) {
      const r = await chat(gws[i % 2].port, key, chatBody('gpt-4o-mini', `load ${i}`),
        { headers: { 'x-request-id': `out-${i}-${Date.now()}` } });
      assert.equal(r.status, 200, `call ${i} during the outage: ${r.text}`);
      answered++;
      await sleep(5);
    }
  })();
  await sleep(300);
  await pg.pause();
  await sleep(2_000);  // calls keep being answered with the database down
  const duringOutage = answered;
  // /readyz names the store as down but keeps the replica in service; the metrics agree.
  const readyDown = await request(gws[0].port, { path: '/readyz' });
  assert.equal(readyDown.status, 200);
  assert.deepEqual(readyDown.json, { status: 'degraded', checks: { store: 'down', redis: 'up', archive: 'up' } });
  assert.match((await request(gws[0].port, { path: '/metrics' })).text, /^llmgw_database_up 0$/m);
  await pg.resume();
  await sleep(1_000);
  stop = true;
  await load;
  assert.ok(duringOutage > 20, `calls answered while PostgreSQL was down: ${duringOutage}`);
  for (const gw of gws) assert.equal(gw.exit, null, 'no replica died');

  // Everything answered ends up in PostgreSQL, once.
  const deadline = Date.now() + 60_000;
  let rows = 0;
  while (Date.now() < deadline) {
    rows = await usageRows(id);
    if (rows >= answered) break;
    await sleep(250);
  }
  if (rows !== answered) {
    const ids = (await pg.query(`SELECT client_request_id FROM usage_records WHERE key_id = '${id}'`)).split('\n');
    const seen = new Set(ids.map((x) => Number(x.split('-')[1])));
    const missing = [];
    for (let i = 0; i < answered - 2; i++) if (!seen.has(i)) missing.push(i);
    console.log('missing', JSON.stringify(missing), 'of', answered - 2, 'ids sample', ids.slice(0, 3));
    for (const gw of gws) {
      console.log(gw.logLines().filter((l) => l.level !== 'info' || /usage|spool|stopped/.test(l.msg))
        .map((l) => JSON.stringify(l)).join('\n'));
    }
  }
  assert.equal(rows, answered, 'one usage row per answered call');
  const spend = await pg.query(`SELECT sum(requests) FROM spend_daily WHERE key_id = '${id}'`);
  assert.equal(Number(spend), answered, 'spend_daily agrees with the usage rows');
  await waitUntil(async () => (await request(gws[0].port, { path: '/readyz' })).json?.status === 'ready', 5_000,
    '/readyz ready again');
  assert.match((await request(gws[0].port, { path: '/metrics' })).text, /^llmgw_database_up 1$/m);
  // The configuration poll recovered: a change made now reaches both replicas.
  assert.ok(gws[0].logLines().some((l) => l.msg === 'config reload failed; serving the last snapshot'));
  assert.ok(gws[0].logLines().some((l) => l.msg === 'config store reachable again'));
});

// Calls whose usage records are in Redis: the queue and every worker's taken batch.
async function queuedInRedis() {
  const script = "local n = redis.call('LLEN', KEYS[1]) for _, k in ipairs(redis.call('KEYS', 'llmgw:usage:taken:*')) do n = n + redis.call('LLEN', k) end return n";
  const reply = await redisCommand(redis.port, `EVAL "${script}" 1 llmgw:usage:queue`);
  return Number(/^:(\d+)/.exec(reply)?.[1] ?? NaN);
}

test('a replica that dies during the outage with its disk loses nothing: another one writes its records from Redis', T, async () => {
  const { key, id } = gws[0].keys.limited;
  const before = await usageRows(id);
  await pg.pause();
  // Both replicas answer calls they cannot record yet; their writers push the records to the
  // Redis usage queue. Then A dies and its data directory is gone: B's worker writes all 40.
  const answered = 40;
  for (let i = 0; i < answered; i++) {
    const r = await chat(gws[i % 2].port, key, chatBody('gpt-4o-mini', `queued ${i}`));
    assert.equal(r.status, 200, r.text);
  }
  const pushed = Date.now() + 10_000;
  while (Date.now() < pushed && (await queuedInRedis()) < answered) await sleep(50);
  assert.equal(await queuedInRedis(), answered, 'every answered call is in the Redis usage queue');
  await gws[0].kill();
  await fsp.rm(path.join(gws[0].dataDir, 'spool'), { recursive: true, force: true });
  await pg.resume();
  // A's worker may have held a batch when it died: it comes back after its lease (3 s here).
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && (await usageRows(id)) < before + answered) await sleep(200);
  assert.equal(await usageRows(id), before + answered, 'B wrote all 40, A\'s too');
  assert.equal(await queuedInRedis(), 0);
  assert.equal(await redisCommand(redis.port, 'LLEN llmgw:usage:dead'), ':0\r\n', 'nothing set aside: the outage was retried');
  // A comes back on an empty disk: nothing is written twice.
  await gws[0].serve();
  await sleep(500);
  assert.equal(await usageRows(id), before + answered);
  const spend = await pg.query(`SELECT sum(requests) FROM spend_daily WHERE key_id = '${id}'`);
  assert.equal(Number(spend), before + answered, 'spend_daily agrees with the usage rows');
});

test('without the Redis usage queue, a replica killed during the outage replays its own spool at restart, whatever the others wrote', T, async () => {
  // LLMGW_USAGE_QUEUE=direct: each replica writes its records to the store itself.
  const direct = [];
  try {
    for (let i = 0; i < 2; i++) {
      // One I/O thread: one key cache, which the warm-up call below fills.
      direct.push(await startGateway({ config: standardConfig(mock.baseUrl), mockKey: mock.apiKey,
        threads: 1, env: { ...baseEnv, LLMGW_USAGE_QUEUE: 'direct' } }));
    }
    const { key, id } = gws[0].keys.limited;
    // Warm their key caches while the database answers (both warm-up rows written).
    const warm = await usageRows(id);
    for (const gw of direct) assert.equal((await chat(gw.port, key, chatBody('gpt-4o-mini', 'warm'))).status, 200);
    await waitUntil(async () => (await usageRows(id)) === warm + 2, 10_000, 'the warm-up rows');
    const before = await usageRows(id);
    await pg.pause();
    // Both replicas answer calls they cannot record yet; A is then killed with its records in
    // its spool. B writes its own after the database returns, moving B's marks past A's
    // sequence numbers: A's replay must still write every one of its records.
    let answered = 0;
    for (let i = 0; i < 40; i++) {
      const r = await chat(direct[i % 2].port, key, chatBody('gpt-4o-mini', `spooled ${i}`));
      assert.equal(r.status, 200, r.text);
      answered++;
    }
    await direct[0].kill();
    await pg.resume();
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await usageRows(id)) < before + 20) await sleep(200);
    assert.equal(await usageRows(id), before + 20, 'B wrote its 20');
    await direct[0].serve();
    while (Date.now() < deadline && (await usageRows(id)) < before + answered) await sleep(200);
    assert.equal(await usageRows(id), before + answered, 'A replayed its 20 at restart');
    assert.ok(direct[0].logLines().some((l) => l.msg === 'usage records replayed from the spool'));
  } finally {
    for (const gw of direct) await gw.cleanup();
  }
});
