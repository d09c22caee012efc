// Three gateway processes sharing one PostgreSQL (DATABASE_URL) and one Redis (REDIS_ADDRESS),
// each with its own data directory, behaving as one gateway: a key's RPM holds exactly across
// them, a key disabled through one is refused by the others within a second, every accepted
// call has its usage row in PostgreSQL, and Redis going away and coming back follows the
// configured failure policy without crashing anything.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  OpenAIMock, startGateway, standardConfig, chat, chatBody, adminLogin, adminRequest, sleep,
  TEST_JWT_SECRET, request, waitUntil,
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
  mock = new OpenAIMock({ anyModel: true });
  await mock.start();
  redis = await new RedisServer().start();
  pg = await pgSchema();
  const config = distributedConfig(mock.baseUrl);
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

/** The standard models plus `money-budget`, priced by the file: $1 / 1M input, $2 / 1M output. */
function distributedConfig(mockBaseUrl) {
  const c = standardConfig(mockBaseUrl);
  c.models.push({ name: 'money-budget', provider: 'mock' });
  c.models.push({ name: 'model-rpm-10', provider: 'mock', upstream_model: 'gpt-4o-mini', rpm_limit: 10 });
  c.prices = [{ model: 'money-budget', components: { raw:
    '[{direction: "input", unit: "1m_tokens", price: "1"}, {direction: "output", unit: "1m_tokens", price: "2"}]' } }];
  return c;
}

// Exact decimals as BigInt counts of 1e-24 USD.
const DECIMALS = 24;
const ONE = 10n ** BigInt(DECIMALS);
function dec(text) {
  const [w, f = ''] = String(text).split('.');
  return BigInt(w) * ONE + BigInt(f.padEnd(DECIMALS, '0'));
}
function decStr(units) {
  const frac = (units % ONE).toString().padStart(DECIMALS, '0').replace(/0+$/, '');
  return frac ? `${units / ONE}.${frac}` : `${units / ONE}`;
}

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

test('a budget under 150 concurrent calls through three replicas is never passed', T, async () => {
  const IN = dec('1') / 1_000_000n;
  const OUT = dec('2') / 1_000_000n;
  const maxTokens = 100n;
  const body = chatBody('money-budget', 'spend [mock:prompt_tokens=50] [mock:completion_tokens=20] [mock:delay_ms=30]',
    { max_tokens: Number(maxTokens) });
  const worst = BigInt(Buffer.byteLength(JSON.stringify(body))) * IN + maxTokens * OUT;
  const actual = 50n * IN + 20n * OUT;
  const budget = worst * 10n + worst / 2n;  // 10 worst cases fit at once, 11 do not
  const k = await gws[0].createKey('budgeted', { budget: decStr(budget), budgetPeriod: 'monthly' });
  const results = await Promise.all(Array.from({ length: 150 }, (_, i) =>
    chat(gws[i % 3].port, k.key, body, { timeoutMs: 30_000 })));
  const ok = results.filter((r) => r.status === 200).length;
  for (const r of results) {
    if (r.status !== 200) {
      assert.equal(r.status, 429, r.text);
      assert.equal(r.json.error.type, 'insufficient_quota');
    }
  }
  assert.ok(ok >= 10, `at least the 10 worst cases that fit at once: ${ok}`);
  assert.ok(BigInt(ok) * actual <= budget, `${ok} calls cost ${decStr(BigInt(ok) * actual)} > budget ${decStr(budget)}`);
  // Without a shared ledger each replica would have let 10 worst cases through at once.
  const deadline = Date.now() + 10_000;
  let rows = '';
  while (Date.now() < deadline) {
    rows = await pg.query(`SELECT count(*) FROM usage_records WHERE key_id = '${k.id}'`);
    if (rows === String(ok)) break;
    await sleep(100);
  }
  assert.equal(rows, String(ok));
  const spent = await pg.query(`SELECT COALESCE(sum(cost_usd::numeric), 0) FROM usage_records WHERE key_id = '${k.id}'`);
  assert.ok(dec(spent) <= budget, `spent ${spent} > budget ${decStr(budget)}`);
  assert.equal(dec(spent), BigInt(ok) * actual);
});

test('across replicas, a call refused by the budget takes back its rate-limit counts', T, async () => {
  const k = await gws[0].createKey('refused', { rpm: 3, budget: '0.000001' });
  for (let i = 0; i < 6; i++) {
    const r = await chat(gws[i % 3].port, k.key, chatBody('gpt-4o-mini', `refused ${i}`));
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.error.type, 'insufficient_quota', r.text);
  }
});

test('a model\'s rpm holds across replicas and keys: exactly 10 of 40', T, async () => {
  const keys = [key('free').key, key('todisable').key];
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) =>
    chat(gws[i % 3].port, keys[i % 2], chatBody('model-rpm-10', `m ${i}`))));
  assert.equal(results.filter((r) => r.status === 200).length, 10);
  for (const r of results.filter((x) => x.status !== 200)) {
    assert.equal(r.status, 429, r.text);
    assert.match(r.json.error.message, /model `model-rpm-10`/);
  }
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
  const budgeted = await gws[0].createKey('budget-while-down', { budget: '5' });
  await redis.stop();
  // Budgets fail closed by default: without the shared ledger a call could overrun.
  const noLedger = await chat(gws[1].port, budgeted.key, chatBody('gpt-4o-mini', 'down'));
  assert.equal(noLedger.status, 503, noLedger.text);
  const open = await Promise.all(gws.slice(0, 3).map((gw) => chat(gw.port, k.key, chatBody('gpt-4o-mini', 'down'))));
  assert.deepEqual(open.map((r) => r.status), [200, 200, 200], 'fail_open: served');
  const shut = await chat(closed.port, k.key, chatBody('gpt-4o-mini', 'down'));
  assert.equal(shut.status, 503, shut.text);
  assert.equal(shut.json.error.type, 'server_error');
  // A key without limits never needs Redis.
  assert.equal((await chat(closed.port, key('free').key, chatBody('gpt-4o-mini', 'free'))).status, 200);
  for (const gw of gws) assert.equal(gw.exit, null, 'no replica died');
  assert.ok(gws[0].logLines().some((l) => l.msg === 'shared state unavailable (Redis)'));
  await waitUntil(async () => (await request(gws[0].port, { path: '/readyz' })).json?.checks?.redis === 'down', 5_000,
    '/readyz reports Redis down');
  assert.match((await request(gws[0].port, { path: '/metrics' })).text, /^llmgw_redis_up 0$/m);

  await redis.start(redis.port);  // same port, empty: the windows start over
  await sleep(400);  // past the clients' reconnect back-off
  await waitUntil(async () => (await request(gws[0].port, { path: '/readyz' })).json?.status === 'ready', 5_000,
    '/readyz ready again');
  const after = [];
  for (let i = 0; i < 8; i++) {
    after.push(await chat(gws[i % 4].port, k.key, chatBody('gpt-4o-mini', `up ${i}`)));
  }
  assert.deepEqual(after.map((r) => r.status), [200, 200, 200, 200, 200, 429, 429, 429],
    'limits hold again once Redis is back');
});
