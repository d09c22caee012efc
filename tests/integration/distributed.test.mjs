// Three gateway processes sharing one PostgreSQL (DATABASE_URL) and one Redis (REDIS_ADDRESS),
// each with its own data directory, behaving as one gateway: a key's RPM holds exactly across
// them, a key disabled through one is refused by the others within a second, every accepted
// call has its usage row in PostgreSQL, and Redis going away and coming back follows the
// configured failure policy without crashing anything.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  OpenAIMock, startGateway, standardConfig, chat, chatBody, adminLogin, adminRequest, sleep,
  TEST_JWT_SECRET,
} from './harness.mjs';
import { RedisServer, pgSchema } from './services.mjs';

const T = { timeout: 120_000 };
const MASTER_KEY = 'ab'.repeat(32);
const ADMIN = { email: 'ops@llmgw.test', password: 'distributed passphrase 1' };

let mock;
let redis;
let pg;
let gws = [];
let token;

function env(extra = {}) {
  return {
    DATABASE_URL: pg.url,
    REDIS_ADDRESS: `127.0.0.1:${redis.port}`,
    ADMIN_JWT_SECRET: TEST_JWT_SECRET,
    LLMGW_MASTER_KEY: MASTER_KEY,
    LLMGW_USAGE_FLUSH_MS: '50',
    ...extra,
  };
}

before(async () => {
  mock = new OpenAIMock();
  await mock.start();
  redis = await new RedisServer().start();
  pg = await pgSchema();
  const config = standardConfig(mock.baseUrl);
  const first = await startGateway({ config, env: env(), mockKey: mock.apiKey,
    keys: { rpm100: { rpm: 100 }, rpm5: { rpm: 5 }, free: {}, todisable: {} } });
  gws.push(first);
  await first.createAdminUser(ADMIN.email, ADMIN.password, { role: 'admin' });
  for (let i = 0; i < 2; i++) {
    gws.push(await startGateway({ config, env: env(), mockKey: mock.apiKey }));
  }
  token = (await adminLogin(first.port, ADMIN.email, ADMIN.password)).token;
});

after(async () => {
  for (const gw of gws) await gw?.cleanup();
  await redis?.cleanup();
  await pg?.drop().catch(() => {});
  await mock?.stop();
});

const key = (name) => gws[0].keys[name];

test('rpm 100 across three replicas: 300 concurrent calls, exactly 100 accepted; usage rows match', T, async () => {
  const calls = Array.from({ length: 300 }, (_, i) =>
    chat(gws[i % 3].port, key('rpm100').key, chatBody('gpt-4o-mini', `call ${i}`)));
  const results = await Promise.all(calls);
  const byStatus = {};
  for (const r of results) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  assert.deepEqual(byStatus, { 200: 100, 429: 200 });
  // Every replica answered from the one shared window (its headers name the key's limit).
  for (let g = 0; g < 3; g++) {
    const mine = results.filter((r, i) => i % 3 === g);
    assert.ok(mine.every((r) => r.headers['x-ratelimit-limit-requests'] === '100'), `replica ${g}`);
  }
  for (const r of results.filter((x) => x.status === 429)) {
    assert.equal(r.headers['x-ratelimit-limit-requests'], '100');
    assert.ok(Number(r.headers['retry-after']) >= 1);
  }
  // Every accepted call has its row in PostgreSQL, written by whichever replica served it.
  const id = key('rpm100').id;
  const deadline = Date.now() + 10_000;
  let rows = '';
  while (Date.now() < deadline) {
    rows = await pg.query(`SELECT count(*) FROM usage_records WHERE key_id = '${id}' AND status = 200`);
    if (rows === '100') break;
    await sleep(100);
  }
  assert.equal(rows, '100', 'usage rows in PostgreSQL');
  // Refused calls never reached a provider and are not usage: no rows for them.
  assert.equal(await pg.query(`SELECT count(*) FROM usage_records WHERE key_id = '${id}'`), '100');
});

test('a key disabled through replica A is refused by B and C within one second', T, async () => {
  const k = key('todisable');
  for (const gw of gws) assert.equal((await chat(gw.port, k.key, chatBody('gpt-4o-mini', 'hi'))).status, 200);
  const r = await adminRequest(gws[0].port, token, 'PATCH', `/admin/keys/${k.id}`, { enabled: false });
  assert.equal(r.status, 200, r.text);
  const t0 = Date.now();
  assert.equal((await chat(gws[0].port, k.key, chatBody('gpt-4o-mini', 'hi'))).status, 401, 'A: at once');
  for (const gw of gws.slice(1)) {
    for (;;) {
      const s = (await chat(gw.port, k.key, chatBody('gpt-4o-mini', 'hi'))).status;
      if (s === 401) break;
      assert.ok(Date.now() - t0 < 1_000, `replica on ${gw.port} still accepts after ${Date.now() - t0} ms`);
      await sleep(20);
    }
  }
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 1_000, `refused everywhere after ${elapsed} ms`);
});

test('Redis stopped: fail_open serves without limits, fail_closed answers 503; both recover', T, async () => {
  const closed = await startGateway({ config: standardConfig(mock.baseUrl), mockKey: mock.apiKey,
    env: env({ LLMGW_RATE_LIMIT_FAILURE_POLICY: 'fail_closed' }) });
  gws.push(closed);
  const k = key('rpm5');
  await redis.stop();
  const open = await Promise.all(gws.slice(0, 3).map((gw) => chat(gw.port, k.key, chatBody('gpt-4o-mini', 'down'))));
  assert.deepEqual(open.map((r) => r.status), [200, 200, 200], 'fail_open: served');
  const shut = await chat(closed.port, k.key, chatBody('gpt-4o-mini', 'down'));
  assert.equal(shut.status, 503, shut.text);
  assert.equal(shut.json.error.type, 'server_error');
  // A key without limits never needs Redis.
  assert.equal((await chat(closed.port, key('free').key, chatBody('gpt-4o-mini', 'free'))).status, 200);
  for (const gw of gws) assert.equal(gw.exit, null, 'no replica died');
  assert.ok(gws[0].logLines().some((l) => l.msg === 'rate limiter unavailable (Redis)'));

  await redis.start(redis.port);  // same port, empty: the windows start over
  await sleep(400);  // past the clients' reconnect back-off
  const after = [];
  for (let i = 0; i < 8; i++) {
    after.push(await chat(gws[i % 4].port, k.key, chatBody('gpt-4o-mini', `up ${i}`)));
  }
  assert.deepEqual(after.map((r) => r.status), [200, 200, 200, 200, 200, 429, 429, 429],
    'limits hold again once Redis is back');
});
