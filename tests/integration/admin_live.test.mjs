// Admin API writes seen by the serving path before their answer is sent: keys created,
// disabled, restricted, regenerated and deleted through the API take effect on the very next
// /v1 request (no sleep, no poll); providers, models and aliases added by the API serve at
// once; admin prices bill the next call exactly; /admin/usage equals the usage records and
// /admin/keys/{id}/spend the settled spend. Upstream: the OpenAI mock.
//
// Money is compared as exact decimals (harness dec/decStr: BigInt counts of 1e-24 USD).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import {
  startAdminStack, chat, chatBody, assertOpenAIError, waitUntil, dec, decStr, decSum, KEY_RE,
} from './harness.mjs';

const T = { timeout: 60_000 };
let s;

before(async () => {
  s = await startAdminStack({ mockOptions: { anyModel: true } });
});

after(async () => {
  await s?.close();
});

const rnd = () => crypto.randomBytes(4).toString('hex');
const usage = (p, c, cached = 0) =>
  `[mock:prompt_tokens=${p}] [mock:completion_tokens=${c}] [mock:cached_tokens=${cached}]`;
const PER_M = (usd) => dec(usd) / 1_000_000n;
const PER_K = (usd) => dec(usd) / 1_000n;

async function ok(p, status = 200) {
  const r = await p;
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  return r.json;
}

async function newKey(body) {
  const k = await ok(s.req('POST', '/admin/keys', { name: `live-${rnd()}`, ...body }), 201);
  assert.match(k.key, KEY_RE);
  return k;
}

/** The one value of response header `name` (asserts there is exactly one). */
function header(res, name) {
  const values = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    if (res.rawHeaders[i].toLowerCase() === name) values.push(res.rawHeaders[i + 1]);
  }
  assert.equal(values.length, 1, `expected exactly one ${name} header, got ${JSON.stringify(values)}`);
  return values[0];
}

const refused = (r, what) => assertOpenAIError(assert, r, 401, 'authentication_error', 'invalid_api_key');

// ---------------------------------------------------------------------------------------------
// Keys

test('a key created by the API works at once; disabled, the very next request is 401; enabled again, 200', T, async () => {
  const k = await newKey();
  let r = await chat(s.gw.port, k.key, chatBody('gpt-4o-mini', 'hi'));
  assert.equal(r.status, 200, r.text);
  for (let round = 0; round < 3; round++) {
    await ok(s.req('PATCH', `/admin/keys/${k.id}`, { enabled: false }));
    r = await chat(s.gw.port, k.key, chatBody('gpt-4o-mini', 'hi'));
    refused(r, `round ${round}: the first request after the PATCH`);
    r = await chat(s.gw.port, k.key, chatBody('echo-chat', 'hi'));
    refused(r, `round ${round}: and the next`);
    await ok(s.req('PATCH', `/admin/keys/${k.id}`, { enabled: true }));
    r = await chat(s.gw.port, k.key, chatBody('gpt-4o-mini', 'hi'));
    assert.equal(r.status, 200, `round ${round}: enabled again: ${r.text}`);
  }
});

test('allowed_models changed by PATCH applies to the next request', T, async () => {
  const k = await newKey();
  assert.equal((await chat(s.gw.port, k.key, chatBody('gpt-4o-mini', 'hi'))).status, 200);
  await ok(s.req('PATCH', `/admin/keys/${k.id}`, { allowed_models: ['echo-chat'] }));
  s.mock.clearRequests();
  const r = await chat(s.gw.port, k.key, chatBody('gpt-4o-mini', 'hi'));
  assertOpenAIError(assert, r, 403, 'permission_error');
  assert.equal(s.mock.recorded().length, 0, 'a refused request must not reach the upstream');
  assert.equal((await chat(s.gw.port, k.key, chatBody('echo-chat', 'hi'))).status, 200);
  await ok(s.req('PATCH', `/admin/keys/${k.id}`, { allowed_models: [] }));
  assert.equal((await chat(s.gw.port, k.key, chatBody('gpt-4o-mini', 'hi'))).status, 200, 'empty: every model again');
});

test('regenerate: the old key is 401 at once, the new one 200; DELETE: 401 at once', T, async () => {
  const k = await newKey();
  assert.equal((await chat(s.gw.port, k.key, chatBody('gpt-4o-mini', 'hi'))).status, 200);
  const g = await ok(s.req('POST', `/admin/keys/${k.id}/regenerate`));
  assert.match(g.key, KEY_RE);
  assert.notEqual(g.key, k.key);
  refused(await chat(s.gw.port, k.key, chatBody('gpt-4o-mini', 'hi')), 'the old key');
  assert.equal((await chat(s.gw.port, g.key, chatBody('gpt-4o-mini', 'hi'))).status, 200, 'the new key');
  refused(await chat(s.gw.port, k.key, chatBody('echo-chat', 'hi')), 'the old key, again');

  await ok(s.req('DELETE', `/admin/keys/${k.id}`));
  refused(await chat(s.gw.port, g.key, chatBody('gpt-4o-mini', 'hi')), 'a deleted key');
});

test('a key with an expiry in the past set by PATCH is refused at once', T, async () => {
  const k = await newKey();
  assert.equal((await chat(s.gw.port, k.key, chatBody('echo-chat', 'hi'))).status, 200);
  const r = await s.req('PATCH', `/admin/keys/${k.id}`, { expires_at: '2020-01-01T00:00:00Z' });
  if (r.status === 200) {
    refused(await chat(s.gw.port, k.key, chatBody('echo-chat', 'hi')), 'an expired key');
  } else {
    // Refusing a past expiry is the CLI's rule; the API may share it.
    assert.equal(r.status, 422, r.text);
    assert.equal((await chat(s.gw.port, k.key, chatBody('echo-chat', 'hi'))).status, 200);
  }
});

// ---------------------------------------------------------------------------------------------
// Providers, models and aliases

test('a provider, model and alias added by the API serve at once; changes apply to the next call', T, async () => {
  const { key } = await newKey();
  const tag = rnd();
  const prov = await ok(s.req('POST', '/admin/providers',
    { name: `live-prov-${tag}`, type: 'openai', base_url: s.mock.baseUrl, api_key: s.mock.apiKey }), 201);
  const model = await ok(s.req('POST', '/admin/models',
    { name: `live-model-${tag}`, provider: prov.name, upstream_model: `live-upstream-${tag}` }), 201);
  const alias = await ok(s.req('POST', '/admin/aliases', { alias: `live-alias-${tag}`, model: model.name }), 201);

  const lastUpstream = () => {
    const rec = s.mock.recorded().at(-1);
    assert.ok(rec, 'the mock received the call');
    return { model: JSON.parse(rec.body_text).model, auth: rec.headers.authorization };
  };
  s.mock.clearRequests();
  let r = await chat(s.gw.port, key, chatBody(alias.alias, 'via the alias'));
  assert.equal(r.status, 200, `an alias added a moment ago: ${r.text}`);
  assert.deepEqual(lastUpstream(), { model: `live-upstream-${tag}`, auth: `Bearer ${s.mock.apiKey}` });
  r = await chat(s.gw.port, key, chatBody(model.name, 'direct'));
  assert.equal(r.status, 200, r.text);

  await ok(s.req('PATCH', `/admin/models/${model.id}`, { upstream_model: `live-upstream-${tag}-2` }));
  r = await chat(s.gw.port, key, chatBody(alias.alias, 'after the model changed'));
  assert.equal(r.status, 200, r.text);
  assert.equal(lastUpstream().model, `live-upstream-${tag}-2`);

  await ok(s.req('PATCH', `/admin/aliases/${alias.alias}`, { model: 'gpt-4o' }));
  r = await chat(s.gw.port, key, chatBody(alias.alias, 'after the alias moved'));
  assert.equal(r.status, 200, r.text);
  assert.equal(lastUpstream().model, 'gpt-4o');

  // A new credential is used by the next call.
  await ok(s.req('PATCH', `/admin/providers/${prov.id}`, { api_key: 'sk-wrong-credential-0000' }));
  s.mock.clearRequests();
  r = await chat(s.gw.port, key, chatBody(model.name, 'wrong key'));
  assert.notEqual(r.status, 200, 'the mock refuses the wrong credential');
  assert.equal(lastUpstream().auth, 'Bearer sk-wrong-credential-0000');
  await ok(s.req('PATCH', `/admin/providers/${prov.id}`, { api_key: s.mock.apiKey }));
  r = await chat(s.gw.port, key, chatBody(model.name, 'right key again'));
  assert.equal(r.status, 200, r.text);

  // Removed: the next call does not find it.
  await ok(s.req('PATCH', `/admin/aliases/${alias.alias}`, { model: model.name }));
  await ok(s.req('DELETE', `/admin/aliases/${alias.alias}`));
  assertOpenAIError(assert, await chat(s.gw.port, key, chatBody(alias.alias, 'gone')), 404, 'invalid_request_error', 'model_not_found');
  await ok(s.req('DELETE', `/admin/models/${model.id}`));
  assertOpenAIError(assert, await chat(s.gw.port, key, chatBody(model.name, 'gone')), 404, 'invalid_request_error', 'model_not_found');
  await ok(s.req('DELETE', `/admin/providers/${prov.id}`));
});

// ---------------------------------------------------------------------------------------------
// Prices

/** Waits (bounded) until the usage rows of x-request-id `rid` are written; returns them. */
async function rowsFor(rid, count = 1) {
  return waitUntil(async () => {
    const rows = await s.gw.usageFor(rid);
    return rows.length >= count ? rows : null;
  }, 10_000, `${count} usage row(s) for ${rid}`);
}

/**
 * A chat call tagged `rid`; returns {cost, status} from the headers (200 asserted). max_tokens
 * keeps the worst case a budget reserves small.
 */
async function pricedCall(key, model, u, rid) {
  const r = await chat(s.gw.port, key, chatBody(model, `priced ${u}`, { max_tokens: 2000 }),
    { headers: { 'x-request-id': rid } });
  assert.equal(r.status, 200, r.text);
  return { cost: header(r, 'x-llmgw-cost-usd'), status: header(r, 'x-llmgw-cost-status') };
}

test('PUT /admin/models/{id}/prices bills the next call exactly at the new prices; DELETE unbills it', T, async () => {
  const { key } = await newKey();
  const tag = rnd();
  const m = await ok(s.req('POST', '/admin/models',
    { name: `priced-${tag}`, provider: 'mock', upstream_model: `priced-up-${tag}`, pricing_model: `price-list-${tag}` }), 201);

  let c = await pricedCall(key, m.name, usage(1000001, 999), `lp-${tag}-0`);
  assert.deepEqual(c, { cost: 'unknown', status: 'unpriced' }, 'no price anywhere yet');

  await ok(s.req('PUT', `/admin/models/${m.id}/prices`, { components: [
    { direction: 'input', unit: '1m_tokens', price: '0.123456789' },
    { direction: 'output', unit: '1k_tokens', price: '0.0031' },
  ] }));
  c = await pricedCall(key, m.name, usage(1000001, 999), `lp-${tag}-1`);
  const first = 1000001n * PER_M('0.123456789') + 999n * PER_K('0.0031');
  assert.equal(decStr(first), '0.126553812456789');
  assert.deepEqual(c, { cost: decStr(first), status: 'exact' });
  assert.equal((await rowsFor(`lp-${tag}-1`))[0].cost_usd, decStr(first), 'the usage row agrees');

  // New prices, cache reads included: the very next call.
  await ok(s.req('PUT', `/admin/models/${m.id}/prices`, { components: [
    { direction: 'input', unit: '1m_tokens', price: '2' },
    { direction: 'cache_read', unit: '1m_tokens', price: '1' },
    { direction: 'output', unit: '1m_tokens', price: '3' },
  ] }));
  c = await pricedCall(key, m.name, usage(1000, 200, 400), `lp-${tag}-2`);
  const second = 600n * PER_M('2') + 400n * PER_M('1') + 200n * PER_M('3');
  assert.equal(decStr(second), '0.0022');
  assert.deepEqual(c, { cost: '0.0022', status: 'exact' });

  await ok(s.req('DELETE', `/admin/models/${m.id}/prices`));
  c = await pricedCall(key, m.name, usage(10, 10), `lp-${tag}-3`);
  assert.deepEqual(c, { cost: 'unknown', status: 'unpriced' }, 'admin prices removed');
});

test('admin prices win over the catalog on a configuration model at once, and DELETE restores the catalog price', T, async () => {
  const { key } = await newKey();
  const tag = rnd();
  const cfg = (await ok(s.req('GET', '/admin/models?limit=500'))).data.find((x) => x.name === 'gpt-4o');
  assert.ok(cfg, 'the configuration model gpt-4o');
  const catalog = await pricedCall(key, 'gpt-4o', usage(1000, 200), `lc-${tag}-0`);
  assert.equal(catalog.status, 'exact', 'gpt-4o is priced by the catalog');

  await ok(s.req('PUT', `/admin/models/${cfg.id}/prices`, { components: [
    { direction: 'input', unit: 'token', price: '0.000001' },
    { direction: 'output', unit: 'token', price: '0.000002' },
  ] }));
  const admin = await pricedCall(key, 'gpt-4o', usage(1000, 200), `lc-${tag}-1`);
  assert.deepEqual(admin, { cost: decStr(1000n * dec('0.000001') + 200n * dec('0.000002')), status: 'exact' });
  assert.equal(admin.cost, '0.0014');

  await ok(s.req('DELETE', `/admin/models/${cfg.id}/prices`));
  assert.deepEqual(await pricedCall(key, 'gpt-4o', usage(1000, 200), `lc-${tag}-2`), catalog);
});

// ---------------------------------------------------------------------------------------------
// Usage and spend

/** A usage_records row set that is no longer changing, and the report read in between. */
async function stableReport(query) {
  return waitUntil(async () => {
    const [{ n: before }] = await s.gw.sql('SELECT COUNT(*) AS n FROM usage_records');
    const report = await ok(s.req('GET', `/admin/usage${query ? `?${query}` : ''}`));
    const rows = await s.gw.usageRows();
    if (rows.length !== before) return null;
    return { report, rows };
  }, 10_000, `a stable usage table for /admin/usage?${query}`);
}

function totalsOf(rows) {
  const sum = (f) => rows.reduce((a, r) => a + r[f], 0);
  return {
    requests: rows.length,
    unpriced_requests: rows.filter((r) => r.cost_usd === null).length,
    prompt_tokens: sum('prompt_tokens'),
    completion_tokens: sum('completion_tokens'),
    total_tokens: sum('prompt_tokens') + sum('completion_tokens'),
    cached_tokens: sum('cached_tokens'),
    reasoning_tokens: sum('reasoning_tokens'),
    cost_usd: decSum(rows.map((r) => r.cost_usd)),
  };
}

function assertTotals(got, rows, ctx) {
  const want = totalsOf(rows);
  const { cost_usd: cost, ...counts } = want;
  for (const [f, v] of Object.entries(counts)) assert.equal(got?.[f], v, `${ctx}: ${f} (${JSON.stringify(got)})`);
  assert.equal(typeof got.cost_usd, 'string', `${ctx}: cost_usd is a decimal string`);
  assert.equal(dec(got.cost_usd), cost, `${ctx}: cost_usd ${got.cost_usd} vs Σ usage rows ${decStr(cost)}`);
}

const dayOf = (r) => new Date(Number(r.created_at_us) / 1000).toISOString().slice(0, 10);

test('/admin/usage totals and groups (day, model, key, provider) equal the usage records', T, async () => {
  const a = await newKey();
  const b = await newKey();
  const tag = rnd();
  const priced = await ok(s.req('POST', '/admin/models',
    { name: `usage-priced-${tag}`, provider: 'mock', pricing_model: `usage-list-${tag}` }), 201);
  await ok(s.req('PUT', `/admin/models/${priced.id}/prices`, { components: [
    { direction: 'input', unit: '1m_tokens', price: '0.15' },
    { direction: 'output', unit: '1m_tokens', price: '0.6' },
  ] }));
  const unpriced = await ok(s.req('POST', '/admin/models', { name: `usage-unpriced-${tag}`, provider: 'mock' }), 201);
  const calls = [
    [a.key, 'gpt-4o-mini', usage(1234, 567, 89)],
    [a.key, 'fast', usage(3, 1)],
    [a.key, priced.name, usage(777, 31)],
    [b.key, priced.name, usage(1000001, 999)],
    [b.key, unpriced.name, usage(5, 5)],
    [b.key, 'echo-chat', 'echo'],
  ];
  for (const [i, [key, model, u]] of calls.entries()) {
    const r = await chat(s.gw.port, key, chatBody(model, `usage ${u}`), { headers: { 'x-request-id': `lu-${tag}-${i}` } });
    assert.equal(r.status, 200, r.text);
  }
  await waitUntil(async () => (await s.gw.sql(
    `SELECT COUNT(*) AS n FROM usage_records WHERE key_id IN ('${a.id}', '${b.id}')`))[0].n >= calls.length,
  10_000, `${calls.length} usage rows`);

  const { report, rows } = await stableReport('');
  assert.equal(report.object, 'usage_report');
  assert.ok(report.group_by === null || report.group_by === undefined || report.group_by === '', `group_by ${report.group_by}`);
  assertTotals(report.totals, rows, 'all');
  assert.ok(report.totals.unpriced_requests >= 1 && dec(report.totals.cost_usd) > 0n);

  const groupings = {
    day: dayOf,
    model: (r) => r.model,
    key: (r) => r.key_id,
    provider: (r) => r.provider,
  };
  for (const [g, groupOf] of Object.entries(groupings)) {
    const { report: rep, rows: rs } = await stableReport(`group_by=${g}`);
    assert.equal(rep.group_by, g);
    assertTotals(rep.totals, rs, `group_by=${g} totals`);
    const want = new Map();
    for (const r of rs) want.set(groupOf(r), [...(want.get(groupOf(r)) ?? []), r]);
    assert.deepEqual(rep.data.map((x) => x.group).sort(), [...want.keys()].sort(), `group_by=${g}: the groups`);
    for (const line of rep.data) assertTotals(line, want.get(line.group), `group_by=${g} ${line.group}`);
    assert.equal(decSum(rep.data.map((x) => x.cost_usd)), dec(rep.totals.cost_usd), `group_by=${g}: Σ groups = totals`);
  }

  // Filters.
  const forKey = await stableReport(`key_id=${b.id}`);
  assertTotals(forKey.report.totals, forKey.rows.filter((r) => r.key_id === b.id), 'key_id');
  assert.equal(forKey.report.totals.requests, 3);
  const forModel = await stableReport(`model=${priced.name}`);
  assertTotals(forModel.report.totals, forModel.rows.filter((r) => r.model === priced.name), 'model');
  assert.equal(forModel.report.totals.requests, 2);
  assert.equal(dec(forModel.report.totals.cost_usd),
    777n * PER_M('0.15') + 31n * PER_M('0.6') + 1000001n * PER_M('0.15') + 999n * PER_M('0.6'), 'exact cost of the priced model');
  const forProvider = await stableReport('provider=local');
  assertTotals(forProvider.report.totals, forProvider.rows.filter((r) => r.provider === 'local'), 'provider');
  const byKeyModel = await stableReport(`key_id=${a.id}&group_by=model`);
  assertTotals(byKeyModel.report.totals, byKeyModel.rows.filter((r) => r.key_id === a.id), 'key_id + group_by=model');

  // from (inclusive) / to (exclusive), as dates and as times.
  const today = new Date().toISOString().slice(0, 10);
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  const inDay = await stableReport(`key_id=${a.id}&from=${today}&to=${tomorrow}`);
  assertTotals(inDay.report.totals, inDay.rows.filter((r) => r.key_id === a.id && dayOf(r) === today), 'from/to dates');
  const future = await stableReport(`from=${tomorrow}&group_by=day`);
  assertTotals(future.report.totals, [], 'from tomorrow');
  assert.deepEqual(future.report.data, []);
  const firstRow = (await s.gw.sql(`SELECT created_at_us FROM usage_records WHERE key_id = '${b.id}' ORDER BY created_at_us LIMIT 1`))[0];
  const cutIso = new Date(Math.floor(Number(firstRow.created_at_us) / 1e6) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const before = await stableReport(`key_id=${b.id}&to=${cutIso}`);
  assertTotals(before.report.totals, before.rows.filter((r) => r.key_id === b.id && Number(r.created_at_us) < Date.parse(cutIso) * 1000),
    `to=${cutIso} (exclusive)`);

  // The same cut written as clients write times: JavaScript's milliseconds, and an offset.
  const cut = Date.parse(cutIso);
  const jsIso = new Date(cut).toISOString(); // …T…:…:….000Z
  const plus2 = new Date(cut + 2 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, '+02:00');
  for (const form of [jsIso, plus2]) {
    const same = await stableReport(`key_id=${b.id}&to=${encodeURIComponent(form)}`);
    assert.deepEqual(same.report.totals, before.report.totals, `to=${form} is the same time as ${cutIso}`);
    assert.equal(same.report.to, cutIso, `to=${form} is echoed normalised to UTC`);
  }

  for (const bad of ['group_by=week', 'from=yesterday', 'to=2026-13-01', 'to=2026-01-01T00:00:00+25:00',
    'from=2026-01-01T00:00:00']) {
    const r = await s.req('GET', `/admin/usage?${bad}`);
    assert.ok([400, 422].includes(r.status), `${bad}: ${r.status} ${r.text}`);
    assertOpenAIError(assert, r, r.status);
  }
});

test('/admin/keys/{id}/spend: spent and remaining of a budgeted key, as the usage records settled', T, async () => {
  const tag = rnd();
  const m = await ok(s.req('POST', '/admin/models',
    { name: `spend-${tag}`, provider: 'mock', pricing_model: `spend-list-${tag}` }), 201);
  await ok(s.req('PUT', `/admin/models/${m.id}/prices`, { components: [
    { direction: 'input', unit: '1m_tokens', price: '2' },
    { direction: 'output', unit: '1m_tokens', price: '3' },
  ] }));
  const unpriced = await ok(s.req('POST', '/admin/models', { name: `spend-unpriced-${tag}`, provider: 'mock' }), 201);
  const k = await newKey({ budget_usd: '1.00', budget_period: 'daily' });

  const fresh = await ok(s.req('GET', `/admin/keys/${k.id}/spend`));
  assert.equal(fresh.key_id, k.id);
  assert.equal(dec(fresh.spent_usd), 0n);
  assert.equal(dec(fresh.remaining_usd), dec('1'));
  assert.equal(fresh.requests, 0);

  const each = 1000n * PER_M('2') + 200n * PER_M('3');
  assert.equal(decStr(each), '0.0026');
  for (let i = 0; i < 2; i++) {
    const c = await pricedCall(k.key, m.name, usage(1000, 200), `ls-${tag}-${i}`);
    assert.equal(c.cost, '0.0026');
  }
  await pricedCall(k.key, unpriced.name, usage(10, 10), `ls-${tag}-u`);
  await waitUntil(async () => (await s.gw.sql(`SELECT COUNT(*) AS n FROM usage_records WHERE key_id = '${k.id}'`))[0].n >= 3,
    10_000, '3 usage rows');

  const sp = await ok(s.req('GET', `/admin/keys/${k.id}/spend`));
  const today = new Date().toISOString().slice(0, 10);
  assert.equal(sp.key_id, k.id);
  assert.equal(dec(sp.budget_usd), dec('1'));
  assert.equal(sp.budget_period, 'daily');
  assert.equal(sp.period.id, today, JSON.stringify(sp));
  assert.equal(Date.parse(sp.period.start), Date.parse(`${today}T00:00:00Z`), JSON.stringify(sp));
  assert.equal(Date.parse(sp.period.end), Date.parse(`${today}T00:00:00Z`) + 86_400_000, JSON.stringify(sp));
  assert.equal(dec(sp.spent_usd), 2n * each, JSON.stringify(sp));
  assert.equal(dec(sp.remaining_usd), dec('1') - 2n * each, JSON.stringify(sp));
  assert.equal(decStr(dec(sp.remaining_usd)), '0.9948');
  assert.equal(sp.requests, 3, JSON.stringify(sp));
  assert.equal(sp.unpriced_requests, 1, JSON.stringify(sp));
  const rows = await s.gw.sql(`SELECT cost_usd FROM usage_records WHERE key_id = '${k.id}'`);
  assert.equal(decSum(rows.map((r) => r.cost_usd)), dec(sp.spent_usd), 'spent = Σ usage rows');

  // Without a budget: remaining is null. Weekly and monthly periods are calendar periods around now.
  const nb = await newKey();
  const none = await ok(s.req('GET', `/admin/keys/${nb.id}/spend`));
  assert.equal(none.budget_usd, null);
  assert.equal(none.remaining_usd, null);
  assert.equal(dec(none.spent_usd), 0n);
  for (const period of ['weekly', 'monthly']) {
    const pk = await newKey({ budget_usd: '5', budget_period: period });
    const p = await ok(s.req('GET', `/admin/keys/${pk.id}/spend`));
    assert.equal(p.budget_period, period);
    const start = Date.parse(p.period.start);
    const end = Date.parse(p.period.end);
    assert.ok(start <= Date.now() && Date.now() < end, `${period}: now within ${p.period.start}..${p.period.end}`);
    assert.equal(new Date(start).getUTCHours(), 0, `${period} starts at midnight UTC`);
    if (period === 'weekly') {
      assert.equal(end - start, 7 * 86_400_000, JSON.stringify(p.period));
      assert.equal(new Date(start).getUTCDay(), 1, `a week starts on Monday: ${p.period.start}`);
    } else {
      const d = new Date();
      assert.equal(p.period.start.slice(0, 10), `${d.toISOString().slice(0, 7)}-01`);
      assert.equal(p.period.id, d.toISOString().slice(0, 7), JSON.stringify(p.period));
    }
  }
});
