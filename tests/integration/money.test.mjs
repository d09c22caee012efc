// Money in the request path: the cost of every call (x-llmgw-cost-usd / x-llmgw-cost-status
// and the usage row), spend per key/day/model, budgets reserved at the worst case and settled
// at the real cost, the ledger rebuilt from the stored spend after a restart, price overrides
// that survive catalog imports, `llmgw usage` and the configuration errors of `prices:`.
//
// Every amount is compared as an exact decimal (BigInt counts of 1e-24 USD, the gateway's own
// resolution), never as a floating-point number.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

import {
  OpenAIMock, REPO_ROOT, startGateway, runCliOk, chat, chatBody, stream, sseChunks,
  sseData, assertOpenAIError, waitUntil, toYaml,
} from './harness.mjs';

const T = { timeout: 60_000 };

// ---------------------------------------------------------------------------------------------
// Exact decimals

const DECIMALS = 24;
const ONE = 10n ** BigInt(DECIMALS);

/** "0.00024" → 240000000000000000000n (units of 1e-24). Throws on anything but a plain decimal. */
function dec(s) {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(String(s));
  assert.ok(m, `not a plain non-negative decimal: ${JSON.stringify(s)}`);
  const frac = m[2] ?? '';
  assert.ok(frac.length <= DECIMALS, `more than ${DECIMALS} decimals: ${s}`);
  return BigInt(m[1]) * ONE + BigInt(frac.padEnd(DECIMALS, '0') || '0');
}

/** Units of 1e-24 → the shortest decimal string ("0.00024", "0", "12"). */
function decStr(units) {
  assert.ok(units >= 0n, `negative amount ${units}`);
  const whole = units / ONE;
  const frac = (units % ONE).toString().padStart(DECIMALS, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}

/** Exact sum of decimal strings (null / undefined are skipped). */
function decSum(values) {
  return values.filter((v) => v !== null && v !== undefined).reduce((a, v) => a + dec(v), 0n);
}

test('the exact decimal helpers', () => {
  assert.equal(decStr(dec('0.00009') + dec('0.00003') + dec('0.00012')), '0.00024');
  assert.equal(decStr(dec('0.1') + dec('0.2')), '0.3');
  assert.equal(decStr(dec('0.000000000000000000000001') * 3n), '0.000000000000000000000003');
  assert.equal(decStr(dec('12') + dec('0.5')), '12.5');
  assert.equal(decStr(0n), '0');
  assert.equal(decSum(['1.000100', null, '0.0000']), dec('1.0001'));
});

// ---------------------------------------------------------------------------------------------
// Prices used below (USD per token, as exact decimals)

const MINI = { input: dec('0.00000015'), cacheRead: dec('0.000000075'), output: dec('0.0000006') };
const PER_M = (usd) => dec(usd) / 1_000_000n; // a price per 1m_tokens, per token
const BUDGET_IN = PER_M('1'); // money-budget: input $1 / 1M tokens
const BUDGET_OUT = PER_M('2'); // money-budget: output $2 / 1M tokens
const ODD_IN = PER_M('0.123456789'); // money-odd: input $0.123456789 / 1M tokens
const ODD_OUT = dec('0.0031') / 1000n; // money-odd: output $0.0031 / 1k tokens

/** A `prices:` entry; components rendered as a YAML flow sequence. */
function priceEntry(model, components) {
  const flow = components.map((c) => `{${Object.entries(c).map(([k, v]) => `${k}: ${JSON.stringify(String(v))}`).join(', ')}}`);
  return { model, components: { raw: `[${flow.join(', ')}]` } };
}

/**
 * The configuration of these tests: everything on the mock (which accepts any model).
 * gpt-4o-mini is priced by the built-in catalog (unless `prices` overrides it); money-* are
 * priced by the `prices:` section only; money-unpriced has no price anywhere.
 */
function moneyConfig(mockBaseUrl, { prices } = {}) {
  return {
    providers: [{ name: 'mock', type: 'openai', base_url: mockBaseUrl, api_key: { raw: '${MOCK_KEY}' } }],
    models: [
      { name: 'gpt-4o-mini', provider: 'mock', upstream_model: 'gpt-4o-mini' },
      { name: 'money-budget', provider: 'mock' },
      { name: 'money-free', provider: 'mock' },
      { name: 'money-unpriced', provider: 'mock' },
      { name: 'money-odd', provider: 'mock', upstream_model: 'odd-upstream', pricing_model: 'money-odd-prices' },
    ],
    aliases: [{ alias: 'mini', model: 'gpt-4o-mini' }],
    prices: prices ?? [
      priceEntry('money-budget', [
        { direction: 'input', unit: '1m_tokens', price: '1' },
        { direction: 'output', unit: '1m_tokens', price: '2' },
      ]),
      priceEntry('money-free', [
        { direction: 'input', unit: '1m_tokens', price: '0' },
        { direction: 'output', unit: '1m_tokens', price: '0' },
      ]),
      priceEntry('money-odd-prices', [
        { direction: 'input', unit: '1m_tokens', price: '0.123456789' },
        { direction: 'output', unit: '1k_tokens', price: '0.0031' },
      ]),
    ],
  };
}

const usage = (p, c, cached = 0) =>
  `[mock:prompt_tokens=${p}] [mock:completion_tokens=${c}] [mock:cached_tokens=${cached}]`;

const bodyBytes = (body) => BigInt(Buffer.byteLength(JSON.stringify(body)));

/** The one value of response header `name` (asserts there is exactly one). */
function header(res, name) {
  const values = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    if (res.rawHeaders[i].toLowerCase() === name) values.push(res.rawHeaders[i + 1]);
  }
  assert.equal(values.length, 1, `expected exactly one ${name} header, got ${JSON.stringify(values)}`);
  return values[0];
}

/** Waits (bounded) until the usage rows of x-request-id `rid` are written; returns them. */
async function rowsFor(gw, rid, count = 1) {
  return waitUntil(async () => {
    const rows = await gw.usageFor(rid);
    return rows.length >= count ? rows : null;
  }, 5_000, `${count} usage row(s) for ${rid}`);
}

async function keyRows(gw, keyId) {
  return gw.sql(`SELECT * FROM usage_records WHERE key_id = '${keyId}' ORDER BY created_at_us, id`);
}

async function waitKeyRows(gw, keyId, count) {
  return waitUntil(async () => {
    const rows = await keyRows(gw, keyId);
    return rows.length >= count ? rows : null;
  }, 10_000, `${count} usage row(s) of ${keyId}`);
}

async function spendRows(gw, keyId) {
  return gw.sql(`SELECT * FROM spend_daily WHERE key_id = '${keyId}' ORDER BY day, model`);
}

/** The price lines of a usage row by direction, with a readable failure. */
function priceLines(row) {
  assert.equal(typeof row.prices, 'string', `prices must be a JSON text: ${JSON.stringify(row)}`);
  const lines = JSON.parse(row.prices);
  assert.ok(Array.isArray(lines), `prices must be a JSON array: ${row.prices}`);
  return Object.fromEntries(lines.map((l) => [l.d, l]));
}

/** What a line costs: price per unit times quantity over the unit's size (p*q/unit). */
function lineCost(line) {
  const divisor = { '1k_tokens': 1000n, '1m_tokens': 1000000n }[line.u] ?? 1n;
  return (dec(line.p) * BigInt(line.q)) / divisor;
}

function assertLine(line, { unit, price, quantity, cost }, ctx) {
  assert.ok(line, `missing price line: ${ctx}`);
  assert.equal(line.m, 'text', ctx);
  assert.equal(line.t, 'default', ctx);
  if (unit) assert.equal(line.u, unit, ctx);
  assert.equal(dec(line.p), price, `price of ${line.d}: ${ctx}`);
  assert.equal(line.q, quantity, `quantity of ${line.d}: ${ctx}`);
  assert.equal(lineCost(line), cost, `cost of ${line.d}: ${ctx}`);
}

// ---------------------------------------------------------------------------------------------
// The shared stack: one mock, one gateway on --threads 2

let mock;
let gw;

before(async () => {
  mock = new OpenAIMock({ anyModel: true });
  await mock.start();
  try {
    gw = await startGateway({ config: moneyConfig(mock.baseUrl), threads: 2, mockKey: mock.apiKey });
  } catch (e) {
    await mock.stop();
    throw e;
  }
});

after(async () => {
  try {
    await gw?.cleanup();
  } finally {
    await mock?.stop();
  }
});

// ---------------------------------------------------------------------------------------------

test('1. exact cost of a JSON call: header, usage row, price lines, spend_daily', T, async () => {
  const { key, id } = await gw.createKey('exact');
  const r = await chat(gw.port, key, chatBody('gpt-4o-mini', `exact ${usage(1000, 200, 400)}`),
    { headers: { 'x-request-id': 'm-exact' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.usage.prompt_tokens, 1000);
  assert.equal(header(r, 'x-llmgw-cost-usd'), '0.00024');
  assert.equal(header(r, 'x-llmgw-cost-status'), 'exact');

  const [row] = await rowsFor(gw, 'm-exact');
  const ctx = JSON.stringify(row);
  assert.equal(row.key_id, id, ctx);
  assert.equal(row.cost_usd, '0.00024', ctx);
  assert.equal(row.cost_status, 'exact', ctx);
  assert.equal(row.pricing_model, 'gpt-4o-mini', ctx);
  assert.equal(row.service_tier, 'default', ctx);
  assert.equal(row.prompt_tokens, 1000, ctx);
  assert.equal(row.completion_tokens, 200, ctx);
  assert.equal(row.cached_tokens, 400, ctx);
  const lines = priceLines(row);
  assert.deepEqual(Object.keys(lines).sort(), ['cache_read', 'input', 'output'], ctx);
  assertLine(lines.input, { price: MINI.input, quantity: 600, cost: dec('0.00009') }, ctx);
  assertLine(lines.cache_read, { price: MINI.cacheRead, quantity: 400, cost: dec('0.00003') }, ctx);
  assertLine(lines.output, { price: MINI.output, quantity: 200, cost: dec('0.00012') }, ctx);
  assert.equal(Object.values(lines).reduce((a, l) => a + lineCost(l), 0n), dec(row.cost_usd), `lines add up to the cost: ${ctx}`);

  const spend = await spendRows(gw, id);
  assert.equal(spend.length, 1, JSON.stringify(spend));
  assert.equal(spend[0].model, 'gpt-4o-mini');
  assert.equal(spend[0].cost_usd, '0.00024');
  assert.equal(spend[0].requests, 1);
  assert.equal(spend[0].unpriced_requests, 0);
  assert.equal(spend[0].prompt_tokens, 1000);
  assert.equal(spend[0].completion_tokens, 200);
  assert.match(spend[0].day, /^\d{4}-\d{2}-\d{2}$/);
  assert.equal(spend[0].day, new Date(Number(row.created_at_us / 1000)).toISOString().slice(0, 10), 'spend day is the UTC day');
});

test('2. stream/JSON parity: the same call streamed (with and without include_usage) and not streamed costs the same', T, async () => {
  const { key } = await gw.createKey('parity');
  const text = `parity ${usage(1234, 56, 200)}`;
  const auth = { authorization: `Bearer ${key}` };

  const j = await chat(gw.port, key, chatBody('gpt-4o-mini', text), { headers: { 'x-request-id': 'm-par-json' } });
  assert.equal(j.status, 200, j.text);
  const jsonCost = header(j, 'x-llmgw-cost-usd');

  const s1 = await stream(gw.port, { body: chatBody('gpt-4o-mini', text, { stream: true }),
    headers: { ...auth, 'x-request-id': 'm-par-stream' } });
  assert.equal(s1.status, 200, s1.raw);
  assert.ok(s1.complete, 'stream complete');
  assert.ok(!s1.raw.includes('"usage"'), `the client did not ask for usage: ${s1.raw}`);
  assert.equal(sseData(s1.raw).at(-1), '[DONE]');

  const s2 = await stream(gw.port, {
    body: chatBody('gpt-4o-mini', text, { stream: true, stream_options: { include_usage: true } }),
    headers: { ...auth, 'x-request-id': 'm-par-stream-usage' } });
  assert.equal(s2.status, 200, s2.raw);
  assert.ok(s2.complete, 'stream complete');
  const usageChunk = sseChunks(s2.raw).find((c) => c.usage);
  assert.ok(usageChunk, `the client asked for usage: ${s2.raw}`);
  assert.equal(usageChunk.usage.prompt_tokens, 1234);
  assert.equal(usageChunk.usage.completion_tokens, 56);

  const s3 = await stream(gw.port, { body: chatBody('gpt-4o-mini', `${text} [mock:usage_in_last_choice_chunk]`, { stream: true }),
    headers: { ...auth, 'x-request-id': 'm-par-stream-quirk' } });
  assert.equal(s3.status, 200, s3.raw);
  assert.ok(s3.complete, 'stream complete');

  // 1034 input + 200 cached at the cache rate + 56 output.
  const expected = 1034n * MINI.input + 200n * MINI.cacheRead + 56n * MINI.output;
  assert.equal(jsonCost, decStr(expected), 'JSON header cost');
  const rids = ['m-par-json', 'm-par-stream', 'm-par-stream-usage', 'm-par-stream-quirk'];
  const rows = [];
  for (const rid of rids) rows.push((await rowsFor(gw, rid))[0]);
  for (const row of rows) {
    const ctx = JSON.stringify(row);
    assert.equal(row.prompt_tokens, 1234, ctx);
    assert.equal(row.completion_tokens, 56, ctx);
    assert.equal(row.cached_tokens, 200, ctx);
    assert.equal(row.usage_reported, 1, ctx);
    assert.equal(row.cost_status, 'exact', ctx);
    assert.equal(row.cost_usd, decStr(expected), ctx);
    assert.deepEqual(JSON.parse(row.prices), JSON.parse(rows[0].prices), `same price lines: ${ctx}`);
  }
  assert.deepEqual(rows.map((r) => r.stream), [0, 1, 1, 1]);
});

// Budget settlement: a call reserves its worst case, then is settled at its real cost (what its
// usage row says). Six sequential calls costing little must leave room for another worst case.
const SETTLE_MAX_TOKENS = 1000n;
const settleText = `settle ${usage(10, 5)}`;
const SETTLE = {
  json: chatBody('money-budget', settleText, { max_tokens: Number(SETTLE_MAX_TOKENS) }),
  stream: chatBody('money-budget', settleText, { max_tokens: Number(SETTLE_MAX_TOKENS), stream: true }),
  failed: chatBody('money-budget', `${settleText} [mock:drop]`, { max_tokens: Number(SETTLE_MAX_TOKENS) }),
};
const settleWorst = (b) => bodyBytes(b) * BUDGET_IN + SETTLE_MAX_TOKENS * BUDGET_OUT;

async function settleRun(name, send) {
  const worst = Object.values(SETTLE).map(settleWorst).reduce((a, b) => (a > b ? a : b));
  const budget = worst * 3n + worst / 2n; // three worst cases fit, four do not
  const { key, id } = await gw.createKey(`settle-${name}`, { budget: decStr(budget) });
  const statuses = [];
  for (let i = 0; i < 6; i++) statuses.push(await send(key, `m-settle-${name}-${i}`));
  const last = await chat(gw.port, key, SETTLE.json, { headers: { 'x-request-id': `m-settle-${name}-last` } });
  const rows = await waitKeyRows(gw, id, statuses.filter((x) => x !== 429).length + (last.status === 200 ? 1 : 0));
  const spent = decSum(rows.map((r) => r.cost_usd));
  const what = `budget ${decStr(budget)}, worst case ${decStr(settleWorst(SETTLE[name]))}, spend recorded in the ` +
    `usage rows ${decStr(spent)}; statuses ${statuses.join(',')}, then ${last.status}`;
  return { statuses, last, spent, rows, what };
}

test('2b. budget settlement: JSON calls are settled at their real cost', T, async () => {
  const r = await settleRun('json', async (key, rid) => (await chat(gw.port, key, SETTLE.json, { headers: { 'x-request-id': rid } })).status);
  const actual = 10n * BUDGET_IN + 5n * BUDGET_OUT;
  assert.equal(r.spent, actual * BigInt(r.rows.length), r.what);
  assert.deepEqual(r.statuses, [200, 200, 200, 200, 200, 200], r.what);
  assert.equal(r.last.status, 200, `${r.what}: ${r.last.text}`);
});

test('2c. budget settlement: streamed calls are settled at their real cost, like JSON calls', T, async () => {
  const r = await settleRun('stream', async (key, rid) =>
    (await stream(gw.port, { body: SETTLE.stream, headers: { authorization: `Bearer ${key}`, 'x-request-id': rid } })).status);
  const actual = 10n * BUDGET_IN + 5n * BUDGET_OUT;
  assert.equal(r.spent, actual * BigInt(r.rows.length), `each streamed row costs ${decStr(actual)}; ${r.what}`);
  assert.deepEqual(r.statuses, [200, 200, 200, 200, 200, 200],
    `streamed calls must be settled at their real cost (${decStr(actual)} each), not at the worst case reserved; ${r.what}`);
  assert.equal(r.last.status, 200, `${r.what}: ${r.last.text}`);
});

test('2d. budget settlement: calls the provider never answered cost nothing', T, async () => {
  const r = await settleRun('failed', async (key, rid) => (await chat(gw.port, key, SETTLE.failed, { headers: { 'x-request-id': rid } })).status);
  for (const row of r.rows.filter((x) => x.status !== 200)) {
    assert.equal(row.status, 502, JSON.stringify(row));
    assert.equal(dec(row.cost_usd ?? '0'), 0n, `a failed call's row: ${JSON.stringify(row)}`);
  }
  assert.deepEqual(r.statuses, [502, 502, 502, 502, 502, 502],
    `failed calls (usage rows at 0) must not use up the budget; ${r.what}`);
  assert.equal(r.last.status, 200, `${r.what}: ${r.last.text}`);
});

test('3. budget under 200 concurrent calls (--threads 2): never overspent, no upstream call when refused', T, async () => {
  const maxTokens = 100n;
  // Actual usage (50 prompt, 20 completion) stays below the worst case the gateway reserves.
  const body = chatBody('money-budget', `spend ${usage(50, 20)} [mock:delay_ms=30]`, { max_tokens: Number(maxTokens) });
  const worst = bodyBytes(body) * BUDGET_IN + maxTokens * BUDGET_OUT;
  const actual = 50n * BUDGET_IN + 20n * BUDGET_OUT;
  assert.ok(actual < worst);
  const budget = worst * 10n + worst / 2n; // 10 worst-case calls fit, 11 do not
  const { key, id } = await gw.createKey('concurrent', { budget: decStr(budget), budgetPeriod: 'weekly' });
  mock.clearRequests();

  const N = 200;
  const results = await Promise.all(Array.from({ length: N }, (_, i) =>
    chat(gw.port, key, body, { headers: { 'x-request-id': `m-conc-${i}` }, timeoutMs: 30_000 })));
  const ok = results.filter((r) => r.status === 200);
  for (const r of results) {
    if (r.status === 200) {
      assert.equal(header(r, 'x-llmgw-cost-usd'), decStr(actual));
      continue;
    }
    assertOpenAIError(assert, r, 429, 'insufficient_quota', 'insufficient_quota');
  }
  assert.ok(ok.length >= 10, `at least 10 worst-case calls fit the budget; ${ok.length} succeeded`);
  const ceiling = budget / actual; // even settled at the real cost, no more fit
  assert.ok(BigInt(ok.length) <= ceiling, `${ok.length} succeeded, more than budget/actual = ${ceiling}`);
  assert.equal(mock.recorded().length, ok.length,
    `the mock must have received exactly the accepted calls (${ok.length} answered 200)`);

  const rows = await waitKeyRows(gw, id, ok.length);
  assert.equal(rows.length, ok.length, 'one usage row per accepted call, none for refused ones');
  const spent = decSum(rows.map((r) => r.cost_usd));
  assert.ok(spent <= budget, `spent ${decStr(spent)} > budget ${decStr(budget)}`);
  assert.equal(spent, actual * BigInt(ok.length));
  for (const r of rows) assert.equal(r.cost_status, 'exact', JSON.stringify(r));
  const spend = await spendRows(gw, id);
  assert.equal(decSum(spend.map((s) => s.cost_usd)), spent, `spend_daily equals the usage rows: ${JSON.stringify(spend)}`);
  assert.equal(spend.reduce((a, s) => a + s.requests, 0), ok.length);

  // Nothing left reserved: a call that fits the rest of the budget goes through.
  const rest = budget - spent;
  assert.ok(rest >= worst, `after settling, ${decStr(rest)} is left, at least one worst case`);
  const again = await chat(gw.port, key, body, { headers: { 'x-request-id': 'm-conc-after' } });
  assert.equal(again.status, 200, `the budget is settled at the real cost, reservations released: ${again.text}`);
});

/** The largest max_tokens whose worst case (body bytes at `inPrice` + max_tokens at `outPrice`) fits `room`. */
function maxTokensFitting(makeBody, room, inPrice, outPrice) {
  let m = room / outPrice;
  while (m >= 0n && bodyBytes(makeBody(m)) * inPrice + m * outPrice > room) m -= 1n;
  assert.ok(m > 0n, 'no max_tokens fits');
  return m;
}

test('4. restart: the ledger is rebuilt from the stored spend', T, async () => {
  const g = await startGateway({ config: moneyConfig(mock.baseUrl), threads: 2, mockKey: mock.apiKey });
  try {
    const { key, id } = await g.createKey('restart', { budget: '1' });
    // The mock reports 900000 prompt tokens: $0.90 spent by one call.
    let r = await chat(g.port, key, chatBody('money-budget', `big ${usage(900000, 0)}`, { max_tokens: 10 }),
      { headers: { 'x-request-id': 'm-rs-spend' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(header(r, 'x-llmgw-cost-usd'), '0.9');

    // Stopped at once: the spend reaches the database on the way out.
    const ex = await g.stop();
    assert.deepEqual(ex, { code: 0, signal: null }, `exit after SIGTERM; stderr tail: ${g.stderr.slice(-2000)}`);
    const spend = await spendRows(g, id);
    assert.equal(decSum(spend.map((s) => s.cost_usd)), dec('0.9'), JSON.stringify(spend));
    assert.deepEqual((await g.usageFor('m-rs-spend')).map((x) => x.cost_usd), ['0.9']);

    await g.serve({ threads: 2 });
    mock.clearRequests();
    const room = dec('1') - dec('0.9');
    const makeBody = (tag) => (m) => chatBody('money-budget', `${tag} ${usage(10, 0)}`, { max_tokens: Number(m) });
    // One token more than fits the $0.10 left: refused, before any upstream call.
    const fit = maxTokensFitting(makeBody('restart-over'), room, BUDGET_IN, BUDGET_OUT);
    const overBody = makeBody('restart-over')(fit + 1n);
    assert.ok(bodyBytes(overBody) * BUDGET_IN + (fit + 1n) * BUDGET_OUT > room);
    r = await chat(g.port, key, overBody, { headers: { 'x-request-id': 'm-rs-over' } });
    assertOpenAIError(assert, r, 429, 'insufficient_quota', 'insufficient_quota');
    assert.equal(mock.recorded().length, 0, 'a refused call must not reach the provider');

    const fitM = maxTokensFitting(makeBody('restart-fit'), room, BUDGET_IN, BUDGET_OUT);
    r = await chat(g.port, key, makeBody('restart-fit')(fitM), { headers: { 'x-request-id': 'm-rs-fit' } });
    assert.equal(r.status, 200, `a call whose worst case fits the remaining $0.10 exactly: ${r.text}`);
    assert.equal(header(r, 'x-llmgw-cost-usd'), '0.00001');
    assert.equal(mock.recorded().length, 1);
    const [row] = await rowsFor(g, 'm-rs-fit');
    assert.equal(row.cost_usd, '0.00001');
  } finally {
    await g.cleanup();
  }
});

test('5. a zero-priced model is never blocked; an unpriced model is recorded with cost unknown', T, async () => {
  const { key, id } = await gw.createKey('exhausted', { budget: '0.001', budgetPeriod: 'daily' });
  // $0.005 reported for one call: past the $0.001 budget.
  let r = await chat(gw.port, key, chatBody('money-budget', `overrun ${usage(5000, 0)}`, { max_tokens: 5 }),
    { headers: { 'x-request-id': 'm-ex-overrun' } });
  assert.equal(r.status, 200, r.text);
  assert.equal(header(r, 'x-llmgw-cost-usd'), '0.005');
  r = await chat(gw.port, key, chatBody('money-budget', 'blocked', { max_tokens: 1 }),
    { headers: { 'x-request-id': 'm-ex-blocked' } });
  assertOpenAIError(assert, r, 429, 'insufficient_quota', 'insufficient_quota');
  assert.match(String(r.headers['retry-after'] ?? ''), /^\d+$/, 'Retry-After on a budget refusal');

  for (let i = 0; i < 3; i++) {
    r = await chat(gw.port, key, chatBody('money-free', `free ${usage(100000, 100000)}`),
      { headers: { 'x-request-id': `m-ex-free-${i}` } });
    assert.equal(r.status, 200, `zero-priced model blocked: ${r.text}`);
    assert.equal(header(r, 'x-llmgw-cost-usd'), '0');
    assert.equal(header(r, 'x-llmgw-cost-status'), 'exact');
  }
  r = await chat(gw.port, key, chatBody('money-unpriced', `unpriced ${usage(70, 7)}`),
    { headers: { 'x-request-id': 'm-ex-unpriced' } });
  assert.equal(r.status, 200, `unpriced model blocked: ${r.text}`);
  assert.equal(header(r, 'x-llmgw-cost-usd'), 'unknown');
  assert.equal(header(r, 'x-llmgw-cost-status'), 'unpriced');

  const rows = await waitKeyRows(gw, id, 5);
  assert.equal(rows.length, 5, 'no row for the refused call');
  for (const row of rows.filter((x) => x.model === 'money-free')) {
    assert.equal(row.cost_usd, '0', JSON.stringify(row));
    assert.equal(row.cost_status, 'exact', JSON.stringify(row));
  }
  const [unpriced] = await rowsFor(gw, 'm-ex-unpriced');
  assert.equal(unpriced.cost_usd, null, JSON.stringify(unpriced));
  assert.equal(unpriced.cost_status, 'unpriced', JSON.stringify(unpriced));
  assert.equal(unpriced.prompt_tokens, 70);
  assert.equal(unpriced.completion_tokens, 7);

  const spend = Object.fromEntries((await spendRows(gw, id)).map((s) => [s.model, s]));
  assert.deepEqual(Object.keys(spend).sort(), ['money-budget', 'money-free', 'money-unpriced'], JSON.stringify(spend));
  assert.equal(spend['money-unpriced'].requests, 1);
  assert.equal(spend['money-unpriced'].unpriced_requests, 1);
  assert.equal(dec(spend['money-unpriced'].cost_usd), 0n);
  assert.equal(spend['money-unpriced'].prompt_tokens, 70);
  assert.equal(spend['money-free'].requests, 3);
  assert.equal(spend['money-free'].unpriced_requests, 0);
  assert.equal(dec(spend['money-free'].cost_usd), 0n);
  assert.equal(spend['money-budget'].requests, 1);
  assert.equal(spend['money-budget'].cost_usd, '0.005');
});

/** The "added A, changed C, unchanged U" counts of `llmgw catalog import`. */
function importCounts(stdout) {
  const m = /added (\d+), changed (\d+), unchanged (\d+)/.exec(stdout);
  assert.ok(m, `no "added A, changed C, unchanged U" line in: ${stdout}`);
  return { added: Number(m[1]), changed: Number(m[2]), unchanged: Number(m[3]) };
}

test('6. catalog re-imports keep the config overrides', T, async () => {
  const prices = [priceEntry('gpt-4o-mini', [{ direction: 'input', unit: '1m_tokens', price: '5' }])];
  const g = await startGateway({ config: moneyConfig(mock.baseUrl, { prices }), threads: 2, mockKey: mock.apiKey });
  try {
    const { key } = await g.createKey('override');
    const OVERRIDE_IN = PER_M('5');
    const call = async (rid, expected) => {
      const r = await chat(g.port, key, chatBody('gpt-4o-mini', `override ${usage(1000, 200)}`),
        { headers: { 'x-request-id': rid } });
      assert.equal(r.status, 200, r.text);
      assert.equal(header(r, 'x-llmgw-cost-usd'), decStr(expected), rid);
      const [row] = await rowsFor(g, rid);
      assert.equal(row.cost_usd, decStr(expected), JSON.stringify(row));
      const lines = priceLines(row);
      assertLine(lines.input, { unit: '1m_tokens', price: dec('5'), quantity: 1000, cost: 1000n * OVERRIDE_IN }, JSON.stringify(row));
      return lines;
    };
    const stopOk = async () => {
      const ex = await g.stop();
      assert.deepEqual(ex, { code: 0, signal: null }, `exit after SIGTERM; stderr tail: ${g.stderr.slice(-2000)}`);
    };
    const importCli = async (args) => (await runCliOk(['catalog', 'import', '--data-dir', g.dataDir, ...args], { env: g.env })).stdout;

    const withDefault = 1000n * OVERRIDE_IN + 200n * MINI.output; // 0.00512
    assert.equal(decStr(withDefault), '0.00512');
    await call('m-ov-1', withDefault);
    await stopOk();

    // A catalog whose gpt-4o-mini output price changed: the model is changed, the override stays.
    const catalog = JSON.parse(await fsp.readFile(path.join(REPO_ROOT, 'catalog/litellm/model_prices_and_context_window.json'), 'utf8'));
    const entry = { ...catalog['gpt-4o-mini'], output_cost_per_token: 9e-7 };
    const file = path.join(g.dataDir, 'prices.json');
    await fsp.writeFile(file, JSON.stringify({ 'gpt-4o-mini': entry }));
    let out = await importCli([file, '--providers', 'anthropic']);
    assert.deepEqual(importCounts(out), { added: 0, changed: 0, unchanged: 0 }, `filtered out by --providers: ${out}`);
    assert.match(out, /\b1 by --providers\b/, out);
    out = await importCli([file, '--providers', 'openai', '--verbose']);
    assert.deepEqual(importCounts(out), { added: 0, changed: 1, unchanged: 0 }, out);
    assert.match(out, /^ {2}changed gpt-4o-mini$/m, out);
    await g.serve({ threads: 2 });
    const lines = await call('m-ov-2', 1000n * OVERRIDE_IN + 200n * dec('0.0000009'));
    assert.equal(dec(lines.output.p), dec('0.0000009'), 'the new catalog output price applies');
    await stopOk();

    // Back to the built-in catalog, twice: the second import changes nothing.
    out = await importCli([]);
    assert.equal(importCounts(out).added, 0, out);
    assert.equal(importCounts(out).changed, 1, `gpt-4o-mini goes back to the built-in prices: ${out}`);
    out = await importCli([]);
    assert.match(out, /added 0, changed 0\b/, out);
    const overrides = await g.sql("SELECT model_name, direction, unit, price FROM pricing_components WHERE source = 'override'");
    assert.deepEqual(overrides, [{ model_name: 'gpt-4o-mini', direction: 'input', unit: '1m_tokens', price: '5' }]);
    await g.serve({ threads: 2 });
    await call('m-ov-3', withDefault);
  } finally {
    await g.cleanup();
  }
});

/** Parses `llmgw usage` output: {rows: [{name, requests, prompt, completion, cost, unpriced}], total}. */
function parseUsageTable(stdout) {
  const lines = stdout.split('\n').filter((l) => l.trim());
  const head = lines.findIndex((l) => /\bCOST_USD\b/.test(l));
  assert.ok(head >= 0, `no header line in: ${stdout}`);
  const rows = lines.slice(head + 1).map((l) => {
    const f = l.trim().split(/\s+/);
    assert.equal(f.length, 6, `not a 6-column line: ${JSON.stringify(l)}`);
    return { name: f[0], requests: Number(f[1]), prompt: Number(f[2]), completion: Number(f[3]), cost: f[4], unpriced: Number(f[5]) };
  });
  const total = rows.pop();
  assert.equal(total?.name, 'TOTAL', `the last line must be TOTAL: ${stdout}`);
  return { rows, total };
}

test('7. `llmgw usage --by model`: the TOTAL is the exact sum of the usage rows', T, async () => {
  const { key, id } = await gw.createKey('report');
  const calls = [
    ['gpt-4o-mini', usage(1234, 567, 89)],
    ['gpt-4o-mini', usage(3, 1)],
    ['mini', usage(77777, 3333, 7)],
    ['money-odd', usage(777, 31)],
    ['money-odd', usage(1000001, 999)],
    ['money-unpriced', usage(5, 5)],
  ];
  for (const [i, [model, u]] of calls.entries()) {
    const r = await chat(gw.port, key, chatBody(model, `report ${u}`), { headers: { 'x-request-id': `m-rep-${i}` } });
    assert.equal(r.status, 200, r.text);
  }
  const rows = await waitKeyRows(gw, id, calls.length);
  // money-odd is priced in 1m_tokens and 1k_tokens units: many decimals, exactly.
  const odd = rows.filter((r) => r.model === 'money-odd');
  assert.equal(odd[1].cost_usd, decStr(1000001n * ODD_IN + 999n * ODD_OUT), JSON.stringify(odd[1]));
  const sumRows = decSum(rows.map((r) => r.cost_usd));

  const r = await runCliOk(['usage', '--data-dir', gw.dataDir, '--key', id, '--by', 'model'], { env: gw.env });
  const table = parseUsageTable(r.stdout);
  assert.equal(dec(table.total.cost), sumRows, `TOTAL ${table.total.cost} vs Σ usage rows ${decStr(sumRows)}:\n${r.stdout}`);
  assert.equal(decSum(table.rows.map((x) => x.cost)), dec(table.total.cost), `Σ lines = TOTAL:\n${r.stdout}`);
  assert.equal(table.total.requests, calls.length, r.stdout);
  assert.equal(table.total.unpriced, 1, r.stdout);
  assert.equal(table.total.prompt, rows.reduce((a, x) => a + x.prompt_tokens, 0), r.stdout);
  assert.equal(table.total.completion, rows.reduce((a, x) => a + x.completion_tokens, 0), r.stdout);
  assert.deepEqual(table.rows.map((x) => x.name).sort(), ['gpt-4o-mini', 'mini', 'money-odd', 'money-unpriced'], r.stdout);
  for (const line of table.rows) {
    const mine = rows.filter((x) => x.model === line.name);
    assert.equal(dec(line.cost), decSum(mine.map((x) => x.cost_usd)), `${line.name}:\n${r.stdout}`);
    assert.equal(line.requests, mine.length, `${line.name}:\n${r.stdout}`);
  }

  const byDay = parseUsageTable((await runCliOk(['usage', '--data-dir', gw.dataDir, '--key', id, '--by', 'day'], { env: gw.env })).stdout);
  assert.equal(dec(byDay.total.cost), sumRows, 'the same TOTAL by day');
});

test('8. a stream cut short by the provider is billed as estimated', T, async () => {
  const { key } = await gw.createKey('cut');
  const st = await stream(gw.port, { body: chatBody('money-budget', 'cut [mock:drop_after_chunks=3]', { stream: true }),
    headers: { authorization: `Bearer ${key}`, 'x-request-id': 'm-cut' } });
  assert.equal(st.status, 200, st.raw);
  assert.ok(/"error"/.test(st.raw), `the client is told the stream broke off: ${st.raw}`);
  const [row] = await rowsFor(gw, 'm-cut');
  const ctx = JSON.stringify(row);
  assert.equal(row.usage_reported, 0, ctx);
  assert.equal(row.stream, 1, ctx);
  assert.equal(row.cost_status, 'estimated', ctx);
  assert.notEqual(row.cost_usd, null, ctx);
  assert.ok(dec(row.cost_usd) > 0n, ctx);
});

test('9. configuration errors in prices: exit non-zero naming the file and the field', T, async () => {
  const g = await startGateway({ config: moneyConfig(mock.baseUrl), serve: false, mockKey: mock.apiKey });
  try {
    const ok = { direction: 'input', unit: '1m_tokens', price: '1' };
    const cases = [
      [[priceEntry('a', [{ ...ok, unit: 'tokens' }])], 'prices[0].components[0].unit'],
      [[priceEntry('a', [{ ...ok, price: '-1' }])], 'prices[0].components[0].price'],
      [[priceEntry('a', [ok]), priceEntry('b', [ok, { ...ok, price: 'abc' }])], 'prices[1].components[1].price'],
      [[priceEntry('a', [{ ...ok, price: '0.0000000000000000000000001' }])], 'prices[0].components[0].price'],
      [[priceEntry('a', [{ ...ok, price: '' }])], 'prices[0].components[0].price'],
      [[priceEntry('a', [{ ...ok, direction: 'sideways' }])], 'prices[0].components[0].direction'],
      [[priceEntry('a', [{ ...ok, modality: 'smell' }])], 'prices[0].components[0].modality'],
      [[priceEntry('a', [{ ...ok, tier: 'gold' }])], 'prices[0].components[0].tier'],
      [[priceEntry('a', [{ ...ok, colour: 'red' }])], 'prices[0].components[0].colour'],
      [[{ model: 'a', components: { raw: '[]' } }], 'prices[0].components'],
      [[priceEntry('a', [ok]), priceEntry('a', [ok])], 'prices[1].model'],
    ];
    for (const [prices, field] of cases) {
      await fsp.writeFile(g.configPath, toYaml(moneyConfig(mock.baseUrl, { prices })));
      const r = await g.serveExpectExit();
      const ctx = `${field}: ${JSON.stringify(prices)}\nstderr: ${r.stderr}`;
      assert.ok(r.exited, `the gateway must refuse to start: ${ctx}`);
      assert.notEqual(r.code, 0, ctx);
      assert.ok(r.stderr.includes(g.configPath), `stderr names the file: ${ctx}`);
      assert.ok(r.stderr.includes(field), `stderr names the field: ${ctx}`);
    }
    // The refusals left the store as `migrate` made it (on SQLite: the file is still there).
    if (g.store === 'sqlite') assert.ok(fs.existsSync(g.dbPath));
    assert.deepEqual(await g.sql('SELECT id FROM config_version'), [{ id: 1 }]);
  } finally {
    await g.cleanup();
  }
});

test('10. every proxied non-streamed answer carries the cost headers, failures included', T, async () => {
  const { key } = await gw.createKey('headers');
  const cases = [
    ['ok', '', 200],
    ['upstream-json-500', '[mock:status=500]', 500],
    ['upstream-json-429', '[mock:status=429]', 429],
    ['upstream-html-502', '[mock:status=502] [mock:html_error]', 502],
    ['upstream-401', '[mock:status=401]', 502],
    ['upstream-dropped', '[mock:drop]', 502],
  ];
  const missing = [];
  for (const [name, directive, status] of cases) {
    const r = await chat(gw.port, key, chatBody('money-budget', `headers ${usage(10, 5)} ${directive}`),
      { headers: { 'x-request-id': `m-hdr-${name}` } });
    assert.equal(r.status, status, `${name}: ${r.text}`);
    const cost = r.headers['x-llmgw-cost-usd'];
    const st = r.headers['x-llmgw-cost-status'];
    const [row] = await rowsFor(gw, `m-hdr-${name}`);
    if (cost === undefined || st === undefined) {
      missing.push(`${name} (HTTP ${r.status}; usage row cost_usd ${row.cost_usd}, cost_status ${row.cost_status})`);
      continue;
    }
    assert.equal(cost, row.cost_usd ?? 'unknown', `${name}: header and usage row agree`);
    assert.equal(st, row.cost_status, `${name}: header and usage row agree`);
  }
  assert.deepEqual(missing, [], 'responses without x-llmgw-cost-usd / x-llmgw-cost-status');
});
