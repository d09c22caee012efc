// Admin API resources: CRUD of keys, providers, models, prices, aliases, users and service
// tokens; secrets shown once and never stored or logged in clear; the audit trail of every
// write (before/after, secrets masked); 409 for configuration-owned rows, taken names and rows
// in use; 422 for invalid values; 400 for bodies that are not JSON objects, unknown fields and
// wrong types, on every write route; and a fuzz loop of malformed bodies that must never get a
// 5xx or bring the process down.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import {
  startAdminStack, adminRequest, runCli, adminLogin, adminLoginRaw, request, assertOpenAIError, dec, KEY_RE,
  ADMIN_EMAIL, ADMIN_PASSWORD, sleep, waitUntil,
} from './harness.mjs';

const T = { timeout: 90_000 };
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const KEY_ID_RE = /^key_[0-9a-f]{16}$/;

let s;
/** Every plaintext secret this file handed to or got from the API: none may be stored or logged. */
const secrets = new Set([ADMIN_PASSWORD]);
/** resource ids written through the API, for the audit checks: {id, kind}. */
const written = [];

before(async () => {
  s = await startAdminStack();
});

after(async () => {
  await s?.close();
});

const rnd = () => crypto.randomBytes(4).toString('hex');

let addrSeq = 0;
const freshAddress = () => `127.3.${Math.floor(++addrSeq / 200)}.${(addrSeq % 200) + 1}`;

/** Awaits `p`, asserts the status, returns the JSON. */
async function ok(p, status = 200) {
  const r = await p;
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  return r.json;
}

/** Asserts an OpenAI error of `status` (one of them if an array) naming `param` (a string, or a RegExp). */
function err(r, status, param, ctx = '') {
  const statuses = Array.isArray(status) ? status : [status];
  assert.ok(statuses.includes(r.status), `${ctx} expected ${statuses.join(' or ')}, got ${r.status}: ${r.text}`);
  const e = assertOpenAIError(assert, r, r.status);
  if (param instanceof RegExp) assert.match(String(e.param), param, `${ctx} error.param: ${r.text}`);
  else if (param !== undefined) assert.equal(e.param, param, `${ctx} error.param: ${r.text}`);
  return e;
}

function assertEnvelope(page, ctx) {
  assert.equal(page.object, 'list', ctx);
  assert.ok(Array.isArray(page.data), ctx);
  assert.equal(typeof page.has_more, 'boolean', ctx);
  assert.ok(page.next_cursor === null || typeof page.next_cursor === 'string', `${ctx}: next_cursor ${page.next_cursor}`);
  assert.equal(page.has_more, page.next_cursor !== null, `${ctx}: has_more iff next_cursor`);
}

/** Every row of a list, walking the cursors; `query` without limit/cursor. */
async function listAll(p, query = '', limit = 500) {
  const rows = [];
  let cursor = null;
  for (let i = 0; i < 1000; i++) {
    const sep = p.includes('?') || query ? '&' : '?';
    const url = `${p}${query ? `?${query}` : ''}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await ok(s.req('GET', url));
    assertEnvelope(page, url);
    rows.push(...page.data);
    if (!page.has_more) return rows;
    cursor = page.next_cursor;
  }
  throw new Error(`${p}: more than 1000 pages`);
}

const byName = async (p, name, field = 'name') => (await listAll(p)).find((x) => x[field] === name);

function assertTime(v, ctx) {
  assert.match(String(v), RFC3339_RE, `${ctx}: RFC 3339 UTC: ${v}`);
}

// ---------------------------------------------------------------------------------------------
// API keys

const KEY_FIELDS = ['id', 'object', 'name', 'prefix', 'enabled', 'expires_at', 'rpm_limit', 'tpm_limit',
  'max_concurrent', 'budget_usd', 'budget_period', 'allowed_models', 'tags', 'metadata', 'created_at', 'updated_at'];

function assertKeyObject(k, ctx) {
  for (const f of KEY_FIELDS) assert.ok(Object.hasOwn(k, f), `${ctx}: key object lacks ${f}: ${JSON.stringify(k)}`);
  assert.equal(k.object, 'api_key', ctx);
  assert.match(k.id, KEY_ID_RE, ctx);
  assert.ok(['daily', 'weekly', 'monthly'].includes(k.budget_period), ctx);
  assert.ok(Array.isArray(k.allowed_models) && Array.isArray(k.tags), ctx);
  assert.equal(typeof k.metadata, 'object', ctx);
  assertTime(k.created_at, ctx);
  assertTime(k.updated_at, ctx);
}

async function createKey(body) {
  const k = await ok(s.req('POST', '/admin/keys', body), 201);
  assert.match(k.key, KEY_RE, JSON.stringify(k));
  secrets.add(k.key);
  written.push({ id: k.id, kind: 'key' });
  return k;
}

const withoutSecret = ({ key, ...rest }) => rest;

test('keys: create returns the plaintext once (sk-llmgw-…); GET and lists never show it', T, async () => {
  const k = await createKey({ name: 'crud-min' });
  assertKeyObject(k, 'create');
  assert.ok(k.key.startsWith(k.prefix), `prefix ${k.prefix} of ${k.key}`);
  assert.ok(k.prefix.length >= 8 && k.prefix.length < k.key.length - 20, `the prefix must not reveal the key: ${k.prefix}`);
  assert.equal(k.name, 'crud-min');
  assert.equal(k.enabled, true);
  for (const f of ['expires_at', 'rpm_limit', 'tpm_limit', 'max_concurrent', 'budget_usd']) assert.equal(k[f], null, f);
  assert.deepEqual(k.allowed_models, []);
  assert.deepEqual(k.tags, []);
  assert.deepEqual(k.metadata, {});

  const got = await ok(s.req('GET', `/admin/keys/${k.id}`));
  assert.equal(got.key, undefined, 'GET never returns the key');
  assert.deepEqual(got, withoutSecret(k));
  const list = await s.req('GET', '/admin/keys?limit=500');
  assert.equal(list.status, 200);
  assert.ok(!list.text.includes(k.key), 'the list never shows a key');
  assert.ok(list.json.data.every((x) => x.key === undefined));

  // The key works on /v1 at once.
  const chat = await request(s.gw.port, { method: 'POST', path: '/v1/chat/completions',
    headers: { authorization: `Bearer ${k.key}` }, body: { model: 'echo-chat', messages: [{ role: 'user', content: 'hi' }] } });
  assert.equal(chat.status, 200, chat.text);
});

test('keys: create with every field', T, async () => {
  const body = {
    name: 'crud-full', allowed_models: ['gpt-4o-mini', 'fast'], rpm_limit: 100, tpm_limit: 10000, max_concurrent: 4,
    budget_usd: '25.00', budget_period: 'weekly', expires_at: '2099-01-01', enabled: false,
    tags: ['team-a', 'prod'], metadata: { owner: 'alice', cost_center: '42' },
  };
  const k = await createKey(body);
  assertKeyObject(k, 'create');
  assert.equal(k.name, 'crud-full');
  assert.deepEqual([...k.allowed_models].sort(), ['fast', 'gpt-4o-mini']);
  assert.equal(k.rpm_limit, 100);
  assert.equal(k.tpm_limit, 10000);
  assert.equal(k.max_concurrent, 4);
  assert.equal(dec(k.budget_usd), dec('25'), `budget_usd ${k.budget_usd}`);
  assert.equal(k.budget_period, 'weekly');
  assert.equal(Date.parse(k.expires_at), Date.parse('2099-01-01T00:00:00Z'), `a date means midnight UTC: ${k.expires_at}`);
  assertTime(k.expires_at, 'expires_at');
  assert.equal(k.enabled, false);
  assert.deepEqual([...k.tags].sort(), ['prod', 'team-a']);
  assert.deepEqual(k.metadata, { owner: 'alice', cost_center: '42' });
  assert.deepEqual(await ok(s.req('GET', `/admin/keys/${k.id}`)), withoutSecret(k));
});

test('keys: PATCH changes each field alone; null clears the optional ones', T, async () => {
  let cur = withoutSecret(await createKey({ name: 'patch-me', rpm_limit: 1, tpm_limit: 2, max_concurrent: 3,
    budget_usd: '1', budget_period: 'monthly', expires_at: '2099-01-01T00:00:00Z', tags: ['t'], metadata: { a: 'b' },
    allowed_models: ['gpt-4o'] }));
  const same = (a, b) => {
    if (a === null || b === null) return a === b;
    return JSON.stringify(a) === JSON.stringify(b);
  };
  const steps = [
    ['name', 'patched-name', (v) => v === 'patched-name'],
    ['allowed_models', ['echo-chat'], (v) => same(v, ['echo-chat'])],
    ['rpm_limit', 5, (v) => v === 5],
    ['tpm_limit', 6, (v) => v === 6],
    ['max_concurrent', 7, (v) => v === 7],
    ['budget_usd', '3.5', (v) => dec(v) === dec('3.5')],
    ['budget_period', 'daily', (v) => v === 'daily'],
    ['expires_at', '2098-06-30T12:00:00Z', (v) => Date.parse(v) === Date.parse('2098-06-30T12:00:00Z')],
    ['enabled', false, (v) => v === false],
    ['enabled', true, (v) => v === true],
    ['tags', ['x', 'y'], (v) => same([...v].sort(), ['x', 'y'])],
    ['metadata', { k: 'v' }, (v) => same(v, { k: 'v' })],
    // null clears an optional field
    ['rpm_limit', null, (v) => v === null],
    ['tpm_limit', null, (v) => v === null],
    ['max_concurrent', null, (v) => v === null],
    ['budget_usd', null, (v) => v === null],
    ['expires_at', null, (v) => v === null],
    // collections are emptied with an empty value
    ['tags', [], (v) => same(v, [])],
    ['metadata', {}, (v) => same(v, {})],
    ['allowed_models', [], (v) => same(v, [])],
  ];
  for (const [field, value, check] of steps) {
    const r = await s.req('PATCH', `/admin/keys/${cur.id}`, { [field]: value });
    assert.equal(r.status, 200, `PATCH ${field}=${JSON.stringify(value)}: ${r.text}`);
    const next = r.json;
    assertKeyObject(next, `PATCH ${field}`);
    assert.equal(next.key, undefined, 'PATCH never returns the key');
    assert.ok(check(next[field]), `PATCH ${field}=${JSON.stringify(value)} → ${JSON.stringify(next[field])}`);
    for (const f of KEY_FIELDS) {
      if (f === field || f === 'updated_at') continue;
      assert.deepEqual(next[f], cur[f], `PATCH ${field} must not change ${f}`);
    }
    assert.deepEqual(await ok(s.req('GET', `/admin/keys/${cur.id}`)), next, `GET after PATCH ${field}`);
    cur = next;
  }
  // A refused PATCH changes nothing.
  for (const [body, status, param] of [
    [{ name: null }, 400, 'name'], [{ enabled: null }, 400, 'enabled'], [{ rpm_limit: -1 }, 422, 'rpm_limit'],
    [{ name: 'changed', bogus: 1 }, 400, 'bogus'], [{ name: 'changed', budget_period: 'yearly' }, 422, 'budget_period'],
  ]) {
    err(await s.req('PATCH', `/admin/keys/${cur.id}`, body), status, param, `PATCH ${JSON.stringify(body)}`);
    assert.deepEqual(await ok(s.req('GET', `/admin/keys/${cur.id}`)), cur, `a refused PATCH ${JSON.stringify(body)} changed the key`);
  }
});

test('keys: pagination with limit=2 over 5 keys walks next_cursor', T, async () => {
  const tag = `page-${rnd()}`;
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await createKey({ name: `page-${i}`, tags: [tag] })).id);
  const pages = [];
  let cursor = null;
  for (let i = 0; i < 10; i++) {
    const url = `/admin/keys?tag=${tag}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const r = await s.req('GET', url);
    assert.equal(r.status, 200, r.text);
    assertEnvelope(r.json, url);
    for (const k of r.json.data) assert.equal(k.key, undefined);
    pages.push(r.json);
    if (!r.json.has_more) break;
    cursor = r.json.next_cursor;
  }
  assert.deepEqual(pages.map((p) => p.data.length), [2, 2, 1], JSON.stringify(pages.map((p) => p.data.map((k) => k.id))));
  assert.deepEqual(pages.map((p) => p.has_more), [true, true, false]);
  assert.equal(pages[2].next_cursor, null);
  const seen = pages.flatMap((p) => p.data.map((k) => k.id));
  assert.equal(new Set(seen).size, 5, 'no key twice');
  assert.deepEqual([...seen].sort(), [...ids].sort());

  // Without a filter, limit=2 walks every key once, the same set as one big page.
  const small = await listAll('/admin/keys', '', 2);
  const big = await listAll('/admin/keys', '', 500);
  assert.equal(new Set(small.map((k) => k.id)).size, small.length, 'no key twice across pages');
  assert.deepEqual(small.map((k) => k.id).sort(), big.map((k) => k.id).sort());
  const dflt = await ok(s.req('GET', '/admin/keys'));
  assert.equal(dflt.data.length, Math.min(100, big.length), 'default limit 100');

  for (const bad of ['0', '501', '-1', 'abc', '1.5']) {
    err(await s.req('GET', `/admin/keys?limit=${bad}`), [400, 422], 'limit', `limit=${bad}`);
  }
});

test('keys: filters enabled, name and tag', T, async () => {
  const r = rnd();
  const tag = `f-${r}`;
  const alpha = await createKey({ name: `filter-alpha-${r}`, tags: [tag, `only-alpha-${r}`] });
  const beta = await createKey({ name: `filter-beta-${r}`, tags: [tag], enabled: false });
  const ids = async (q) => (await listAll('/admin/keys', q)).map((k) => k.id).sort();
  assert.deepEqual(await ids(`tag=${tag}`), [alpha.id, beta.id].sort());
  assert.deepEqual(await ids(`tag=only-alpha-${r}`), [alpha.id]);
  assert.deepEqual(await ids(`tag=${tag}&enabled=false`), [beta.id]);
  assert.deepEqual(await ids(`tag=${tag}&enabled=true`), [alpha.id]);
  assert.deepEqual(await ids(`name=filter-alpha-${r}`), [alpha.id]);
  assert.deepEqual(await ids(`name=filter-beta-${r}&enabled=true`), []);
  assert.deepEqual(await ids(`tag=nothing-${r}`), []);
  const disabled = await listAll('/admin/keys', 'enabled=false');
  assert.ok(disabled.every((k) => k.enabled === false) && disabled.some((k) => k.id === beta.id));
  const enabled = await listAll('/admin/keys', 'enabled=true');
  assert.ok(enabled.every((k) => k.enabled === true) && enabled.some((k) => k.id === alpha.id));
  err(await s.req('GET', '/admin/keys?enabled=maybe'), [400, 422], 'enabled');
});

test('keys: regenerate shows a new key once; DELETE answers the deleted object, then 404', T, async () => {
  const k = await createKey({ name: 'regen-delete' });
  const g = await ok(s.req('POST', `/admin/keys/${k.id}/regenerate`));
  assertKeyObject(g, 'regenerate');
  assert.match(g.key, KEY_RE);
  secrets.add(g.key);
  assert.notEqual(g.key, k.key);
  assert.equal(g.id, k.id);
  assert.ok(g.key.startsWith(g.prefix), 'the prefix follows the new key');
  const got = await s.req('GET', `/admin/keys/${k.id}`);
  assert.ok(!got.text.includes(g.key) && !got.text.includes(k.key));

  const del = await ok(s.req('DELETE', `/admin/keys/${k.id}`));
  assert.deepEqual(del, { id: k.id, object: 'api_key', deleted: true });
  err(await s.req('GET', `/admin/keys/${k.id}`), 404);
  err(await s.req('DELETE', `/admin/keys/${k.id}`), 404);
  err(await s.req('PATCH', `/admin/keys/${k.id}`, { name: 'x' }), 404);
  err(await s.req('POST', `/admin/keys/${k.id}/regenerate`), 404);
  err(await s.req('GET', `/admin/keys/${k.id}/spend`), 404);
  err(await s.req('GET', '/admin/keys/key_0000000000000000'), 404);
});

test('keys: 422 on invalid values, naming the field', T, async () => {
  const cases = [
    [{ name: 'x', rpm_limit: -1 }, 'rpm_limit'],
    [{ name: 'x', tpm_limit: -5 }, 'tpm_limit'],
    [{ name: 'x', max_concurrent: -1 }, 'max_concurrent'],
    [{ name: 'x', budget_usd: '-1' }, 'budget_usd'],
    [{ name: 'x', budget_usd: 'abc' }, 'budget_usd'],
    [{ name: 'x', budget_usd: '1e3' }, 'budget_usd'],
    [{ name: 'x', budget_usd: '1.2.3' }, 'budget_usd'],
    [{ name: 'x', budget_usd: '' }, 'budget_usd'],
    [{ name: 'x', budget_period: 'yearly' }, 'budget_period'],
    [{ name: 'x', expires_at: 'tomorrow' }, 'expires_at'],
    [{ name: 'x', expires_at: '2099-13-45' }, 'expires_at'],
    [{ name: 'x', expires_at: '2099-01-01T25:00:00Z' }, 'expires_at'],
  ];
  const before = (await listAll('/admin/keys')).length;
  for (const [body, param] of cases) err(await s.req('POST', '/admin/keys', body), 422, param, JSON.stringify(body));
  assert.equal((await listAll('/admin/keys')).length, before, 'no key was created by a refused request');
});

test('keys: expires_at as clients write it (JavaScript toISOString, offsets), normalised to UTC', T, async () => {
  const forms = [
    ['2099-01-01T00:00:00.000Z', '2099-01-01T00:00:00Z'], // Date.prototype.toISOString()
    ['2099-01-01T02:00:00+02:00', '2099-01-01T00:00:00Z'],
    ['2098-12-31T19:30:00.123456-04:30', '2099-01-01T00:00:00Z'],
    ['2099-01-01', '2099-01-01T00:00:00Z'],
    [new Date(Date.UTC(2099, 5, 15, 12, 30, 45, 678)).toISOString(), '2099-06-15T12:30:45Z'],
  ];
  for (const [sent, stored] of forms) {
    const k = await createKey({ name: `ts-${sent}`, expires_at: sent });
    assert.equal(k.expires_at, stored, sent);
    const patched = await ok(s.req('PATCH', `/admin/keys/${k.id}`, { expires_at: sent }), 200);
    assert.equal(patched.expires_at, stored, `PATCH ${sent}`);
  }
  // The CLI reads the same forms.
  const cli = await runCli(['keys', 'create', '--data-dir', s.gw.dataDir, '--name', 'ts-cli',
    '--expires', '2099-01-01T02:00:00.000+02:00'], { env: s.gw.env });
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /expires: 2099-01-01T00:00:00Z/);
  const bad = await runCli(['keys', 'create', '--data-dir', s.gw.dataDir, '--name', 'ts-bad',
    '--expires', '2099-01-01T00:00:00'], { env: s.gw.env });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--expires: .* is not a date .* or an RFC 3339 time/);
  for (const text of ['2099-01-01T00:00:00', '2099-01-01T00:00:00+24:00', '2099-1-1', '2099-01-01T00:00:00.Z', 'now']) {
    const e = err(await s.req('POST', '/admin/keys', { name: 'ts-refused', expires_at: text }), 422, 'expires_at', text);
    assert.match(e.message, /RFC 3339/, text);
  }
});

// ---------------------------------------------------------------------------------------------
// Providers

const PROVIDER_FIELDS = ['id', 'object', 'name', 'type', 'base_url', 'api_key_hint', 'connect_timeout_ms',
  'first_byte_timeout_ms', 'idle_timeout_ms', 'enabled', 'source', 'created_at', 'updated_at',
  'secrets_set'];

function assertProvider(p, ctx) {
  for (const f of PROVIDER_FIELDS) assert.ok(Object.hasOwn(p, f), `${ctx}: provider lacks ${f}: ${JSON.stringify(p)}`);
  assert.equal(p.object, 'provider', ctx);
  assert.equal(p.api_key, undefined, `${ctx}: api_key is write-only`);
  for (const f of ['connect_timeout_ms', 'first_byte_timeout_ms', 'idle_timeout_ms']) {
    assert.ok(Number.isInteger(p[f]) && p[f] > 0, `${ctx}: ${f} ${p[f]}`);
  }
}

/**
 * Every file of the data dir (on SQLite the database, its WAL and journal among them), every
 * table of the store, and the gateway's stderr: `secret` is in none of them.
 */
async function assertNotStoredInClear(secret, what) {
  const hits = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(Buffer.from(secret))) hits.push(p);
    }
  };
  walk(s.gw.dataDir);
  if (s.gw.store === 'postgres') {
    // The database is not in the data dir: search the text of every row of every table.
    const literal = `'${secret.replaceAll("'", "''")}'`;
    const union = (await s.gw.tableNames())
      .map((t) => `SELECT '${t}' AS t FROM "${t}" x WHERE strpos(x::text, ${literal}) > 0`).join(' UNION ');
    hits.push(...(await s.gw.sql(union)).map((r) => `table ${r.t}`));
  }
  assert.deepEqual(hits, [], `${what} stored in clear`);
  assert.ok(!s.gw.allStderr.includes(secret), `${what} in the gateway's log`);
}

const providerSecret = () => {
  const v = `sk-provider-secret-${crypto.randomBytes(12).toString('hex')}`;
  secrets.add(v);
  return v;
};

test('providers: CRUD; api_key is write-only, shown as a hint, encrypted at rest', T, async () => {
  const secret = providerSecret();
  const name = `prov-${rnd()}`;
  const p = await ok(s.req('POST', '/admin/providers', { name, type: 'openai', base_url: s.mock.baseUrl, api_key: secret }), 201);
  written.push({ id: p.id, kind: 'provider' });
  assertProvider(p, 'create');
  assert.equal(p.name, name);
  assert.equal(p.type, 'openai');
  assert.equal(p.base_url, s.mock.baseUrl);
  assert.equal(p.source, 'admin');
  assert.equal(p.enabled, true);
  assert.equal(typeof p.api_key_hint, 'string');
  assert.ok(p.api_key_hint.endsWith(secret.slice(-4)), `hint ${p.api_key_hint} ends with the key's last 4`);
  assert.ok(p.api_key_hint.length <= 12 && !p.api_key_hint.includes(secret.slice(4, -4)), `the hint reveals little: ${p.api_key_hint}`);

  const got = await s.req('GET', `/admin/providers/${p.id}`);
  assert.equal(got.status, 200, got.text);
  assert.deepEqual(got.json, p);
  const list = await s.req('GET', '/admin/providers?limit=500');
  assert.ok(!list.text.includes(secret) && !got.text.includes(secret), 'the credential is never returned');
  assert.ok(!list.text.includes(s.mock.apiKey), 'nor the configuration file\'s');
  const cfg = list.json.data.find((x) => x.name === 'mock');
  assertProvider(cfg, 'config provider');
  assert.equal(cfg.source, 'config');
  assert.ok(cfg.api_key_hint.endsWith(s.mock.apiKey.slice(-4)), `hint of the config provider: ${cfg.api_key_hint}`);

  const [row] = await s.gw.sql(`SELECT secrets, secrets_encrypted FROM providers WHERE id = '${p.id}'`);
  assert.ok(row, 'the provider row');
  assert.ok(!row.secrets.includes(secret), `providers.secrets holds the key in clear: ${row.secrets}`);
  assert.ok(row.secrets.length > 0, 'a sealed credential is stored');
  assert.equal(row.secrets_encrypted, 1);
  await assertNotStoredInClear(secret, 'the provider api_key');

  // PATCH: each field; a new key → a new hint, still sealed; null removes it.
  const secret2 = providerSecret();
  let q = await ok(s.req('PATCH', `/admin/providers/${p.id}`, { api_key: secret2 }));
  assert.ok(q.api_key_hint.endsWith(secret2.slice(-4)), q.api_key_hint);
  assert.equal(q.name, name, 'other fields unchanged');
  const [row2] = await s.gw.sql(`SELECT secrets FROM providers WHERE id = '${p.id}'`);
  assert.ok(!row2.secrets.includes(secret2));
  await assertNotStoredInClear(secret2, 'the new provider api_key');
  q = await ok(s.req('PATCH', `/admin/providers/${p.id}`, { connect_timeout_ms: 2500, first_byte_timeout_ms: 30000, idle_timeout_ms: 45000 }));
  assert.deepEqual([q.connect_timeout_ms, q.first_byte_timeout_ms, q.idle_timeout_ms], [2500, 30000, 45000]);
  assert.ok(q.api_key_hint.endsWith(secret2.slice(-4)), 'the key stays when not sent');
  q = await ok(s.req('PATCH', `/admin/providers/${p.id}`, { enabled: false }));
  assert.equal(q.enabled, false);
  q = await ok(s.req('PATCH', `/admin/providers/${p.id}`, { name: `${name}-renamed`, type: 'openai_compatible' }));
  assert.equal(q.name, `${name}-renamed`);
  assert.equal(q.type, 'openai_compatible');
  q = await ok(s.req('PATCH', `/admin/providers/${p.id}`, { api_key: null }));
  assert.equal(q.api_key_hint, null, 'api_key: null removes the credential');

  const types = await listAll('/admin/providers', 'type=echo');
  assert.ok(types.length >= 1 && types.every((x) => x.type === 'echo'), JSON.stringify(types));
  assert.ok(types.some((x) => x.name === 'local'));

  const del = await ok(s.req('DELETE', `/admin/providers/${p.id}`));
  assert.deepEqual(del, { id: p.id, object: 'provider', deleted: true });
  err(await s.req('GET', `/admin/providers/${p.id}`), 404);
  err(await s.req('PATCH', `/admin/providers/${p.id}`, { enabled: true }), 404);
  err(await s.req('DELETE', `/admin/providers/${p.id}`), 404);
});

test('providers: each type\'s own settings are fields, its secrets write-only and sealed', T, async () => {
  const secret = providerSecret();
  const name = `bedrock-${rnd()}`;
  const p = await ok(s.req('POST', '/admin/providers', { name, type: 'bedrock', region: 'us-east-1',
    aws_access_key_id: 'AKIAEXAMPLEADMIN0001', aws_secret_access_key: secret }), 201);
  written.push({ id: p.id, kind: 'provider' });
  assertProvider(p, 'bedrock');
  assert.equal(p.type, 'bedrock');
  assert.equal(p.region, 'us-east-1');
  assert.equal(p.aws_access_key_id, 'AKIAEXAMPLEADMIN0001');
  assert.deepEqual(p.secrets_set, ['aws_secret_access_key']);
  assert.equal(p.aws_secret_access_key, undefined, 'a secret is never returned');
  assert.ok(!JSON.stringify(p).includes(secret));
  assert.equal(p.project, undefined, 'another type\'s setting is absent');
  await assertNotStoredInClear(secret, 'the AWS secret access key');

  const token = providerSecret();
  let q = await ok(s.req('PATCH', `/admin/providers/${p.id}`, { region: 'eu-west-1', aws_session_token: token }));
  assert.equal(q.region, 'eu-west-1');
  assert.deepEqual(q.secrets_set.sort(), ['aws_secret_access_key', 'aws_session_token']);
  await assertNotStoredInClear(token, 'the AWS session token');
  q = await ok(s.req('PATCH', `/admin/providers/${p.id}`, { aws_session_token: null }));
  assert.deepEqual(q.secrets_set, ['aws_secret_access_key'], 'null removes a secret');
  err(await s.req('PATCH', `/admin/providers/${p.id}`, { region: null }), 422, 'region', 'a required setting');
  assert.equal((await ok(s.req('GET', `/admin/providers/${p.id}`))).region, 'eu-west-1', 'unchanged');

  err(await s.req('POST', '/admin/providers', { name: `vertex-${rnd()}`, type: 'vertex', project: 'p1' }), 422,
    'location', 'vertex without location');
  err(await s.req('POST', '/admin/providers', { name: `openai-${rnd()}`, type: 'openai',
    base_url: s.mock.baseUrl, region: 'us-east-1' }), [400, 422], undefined, 'a setting of another type');
  const az = await ok(s.req('POST', '/admin/providers', { name: `azure-${rnd()}`, type: 'azure',
    base_url: 'https://example-resource.openai.azure.com', api_key: providerSecret(), api_version: '2024-10-21' }), 201);
  written.push({ id: az.id, kind: 'provider' });
  assert.equal(az.api_version, '2024-10-21');
  assert.deepEqual(az.secrets_set, []);
  await ok(s.req('DELETE', `/admin/providers/${az.id}`));
  await ok(s.req('DELETE', `/admin/providers/${p.id}`));
});

test('providers: 409 on taken names, rows in use and configuration-owned rows; 422 on invalid values', T, async () => {
  const name = `prov-409-${rnd()}`;
  const p = await ok(s.req('POST', '/admin/providers', { name, type: 'echo' }), 201);
  written.push({ id: p.id, kind: 'provider' });
  err(await s.req('POST', '/admin/providers', { name, type: 'echo' }), 409);
  err(await s.req('POST', '/admin/providers', { name: 'mock', type: 'echo' }), 409, undefined, 'a config provider\'s name');
  err(await s.req('PATCH', `/admin/providers/${p.id}`, { name: 'local' }), 409);

  // In use by a model: 409 until the model is gone.
  const m = await ok(s.req('POST', '/admin/models', { name: `on-${name}`, provider: name }), 201);
  err(await s.req('DELETE', `/admin/providers/${p.id}`), 409);
  assert.equal((await s.req('GET', `/admin/providers/${p.id}`)).status, 200, 'still there');
  await ok(s.req('DELETE', `/admin/models/${m.id}`));
  await ok(s.req('DELETE', `/admin/providers/${p.id}`));

  // The configuration file owns `mock`: read-only.
  const cfg = await byName('/admin/providers', 'mock');
  err(await s.req('PATCH', `/admin/providers/${cfg.id}`, { connect_timeout_ms: 1234 }), 409);
  err(await s.req('PATCH', `/admin/providers/${cfg.id}`, { api_key: 'sk-not-taken' }), 409);
  err(await s.req('DELETE', `/admin/providers/${cfg.id}`), 409);
  assert.deepEqual(await ok(s.req('GET', `/admin/providers/${cfg.id}`)), cfg, 'unchanged');

  const bad = [
    [{ name: `x-${rnd()}`, type: 'bogus' }, 'type'],
    [{ name: `x-${rnd()}`, type: 'cohere', base_url: 'https://example.invalid/v1' }, 'type'],
    [{ name: `x-${rnd()}`, type: 'bedrock' }, 'region'],
    [{ name: `x-${rnd()}`, type: 'openai', base_url: 'not a url' }, 'base_url'],
    [{ name: `x-${rnd()}`, type: 'openai', base_url: 'ftp://127.0.0.1/v1' }, 'base_url'],
    [{ name: `x-${rnd()}`, type: 'openai_compatible' }, 'base_url'],
    [{ name: `x-${rnd()}`, type: 'openai', base_url: 'https://user:pw@127.0.0.1/v1' }, 'base_url'],
    [{ name: `x-${rnd()}`, type: 'echo', base_url: 'http://127.0.0.1:9/v1' }, 'base_url'],
    [{ name: `x-${rnd()}`, type: 'echo', connect_timeout_ms: 0 }, 'connect_timeout_ms'],
    [{ name: `x-${rnd()}`, type: 'echo', first_byte_timeout_ms: -1 }, 'first_byte_timeout_ms'],
    [{ name: `x-${rnd()}`, type: 'echo', idle_timeout_ms: -5 }, 'idle_timeout_ms'],
    [{ name: '', type: 'echo' }, 'name'],
  ];
  for (const [body, param] of bad) err(await s.req('POST', '/admin/providers', body), 422, param, JSON.stringify(body));
});

// ---------------------------------------------------------------------------------------------
// Models and prices

const MODEL_FIELDS = ['id', 'object', 'name', 'provider', 'upstream_model', 'pricing_model', 'rpm_limit',
  'tpm_limit', 'enabled', 'source', 'created_at', 'updated_at'];

function assertModel(m, ctx) {
  for (const f of MODEL_FIELDS) assert.ok(Object.hasOwn(m, f), `${ctx}: model lacks ${f}: ${JSON.stringify(m)}`);
  assert.equal(m.object, 'model_route', ctx);
}

test('models: CRUD, filters, 404/409/422', T, async () => {
  const name = `model-${rnd()}`;
  const m = await ok(s.req('POST', '/admin/models', { name, provider: 'mock', upstream_model: 'gpt-4o-mini' }), 201);
  written.push({ id: m.id, kind: 'model' });
  assertModel(m, 'create');
  assert.deepEqual([m.name, m.provider, m.upstream_model, m.pricing_model, m.rpm_limit, m.tpm_limit, m.enabled,
    m.source], [name, 'mock', 'gpt-4o-mini', null, null, null, true, 'admin']);
  const d = await ok(s.req('GET', `/admin/models/${m.id}`));
  assertModel(d, 'get');
  assert.ok(Array.isArray(d.prices), `GET /admin/models/{id} adds prices: ${JSON.stringify(d)}`);
  const bare = await ok(s.req('POST', '/admin/models', { name: `${name}-bare`, provider: 'local' }), 201);
  assert.equal(bare.upstream_model, `${name}-bare`, 'upstream_model defaults to the name');

  let q = await ok(s.req('PATCH', `/admin/models/${m.id}`, { pricing_model: `pm-${name}` }));
  assert.equal(q.pricing_model, `pm-${name}`);
  q = await ok(s.req('PATCH', `/admin/models/${m.id}`, { pricing_model: null }));
  assert.equal(q.pricing_model, null);
  q = await ok(s.req('PATCH', `/admin/models/${m.id}`, { upstream_model: 'gpt-4o' }));
  assert.equal(q.upstream_model, 'gpt-4o');

  // Per-model limits: set, changed one at a time, cleared by null; bad values refused.
  q = await ok(s.req('PATCH', `/admin/models/${m.id}`, { rpm_limit: 600, tpm_limit: 90000 }));
  assert.deepEqual([q.rpm_limit, q.tpm_limit], [600, 90000]);
  q = await ok(s.req('PATCH', `/admin/models/${m.id}`, { rpm_limit: null }));
  assert.deepEqual([q.rpm_limit, q.tpm_limit], [null, 90000], 'null clears one limit only');
  const read = await ok(s.req('GET', `/admin/models/${m.id}`));
  assert.deepEqual([read.rpm_limit, read.tpm_limit], [null, 90000]);
  for (const [body, param] of [[{ rpm_limit: 0 }, 'rpm_limit'], [{ tpm_limit: -1 }, 'tpm_limit']]) {
    err(await s.req('PATCH', `/admin/models/${m.id}`, body), 422, param, JSON.stringify(body));
  }
  err(await s.req('PATCH', `/admin/models/${m.id}`, { rpm_limit: '60' }), 400, 'rpm_limit');
  q = await ok(s.req('PATCH', `/admin/models/${m.id}`, { tpm_limit: null }));
  assert.deepEqual([q.rpm_limit, q.tpm_limit], [null, null]);
  const limited = await ok(s.req('POST', '/admin/models', { name: `${name}-limited`, provider: 'local', rpm_limit: 5 }), 201);
  assert.deepEqual([limited.rpm_limit, limited.tpm_limit], [5, null]);
  await ok(s.req('DELETE', `/admin/models/${limited.id}`));
  q = await ok(s.req('PATCH', `/admin/models/${m.id}`, { provider: 'local', enabled: false }));
  assert.deepEqual([q.provider, q.enabled, q.name], ['local', false, name]);
  err(await s.req('PATCH', `/admin/models/${m.id}`, { provider: 'no-such-provider' }), 422, 'provider');

  const local = await listAll('/admin/models', 'provider=local');
  assert.ok(local.every((x) => x.provider === 'local'), JSON.stringify(local));
  assert.deepEqual(local.map((x) => x.name).filter((n) => n.startsWith('echo-')).sort(), ['echo-chat', 'echo-embed']);
  assert.ok(local.some((x) => x.id === m.id) && local.some((x) => x.id === bare.id));

  // Names are shared by models and aliases.
  err(await s.req('POST', '/admin/models', { name, provider: 'mock' }), 409);
  err(await s.req('POST', '/admin/models', { name: 'gpt-4o', provider: 'mock' }), 409);
  err(await s.req('POST', '/admin/models', { name: 'fast', provider: 'mock' }), 409, undefined, 'an alias name');
  err(await s.req('PATCH', `/admin/models/${bare.id}`, { name: 'echo-chat' }), 409);
  err(await s.req('POST', '/admin/models', { name: `x-${rnd()}`, provider: 'no-such-provider' }), 422, 'provider');
  err(await s.req('POST', '/admin/models', { name: '', provider: 'mock' }), 422, 'name');

  // In use by an alias: 409.
  const alias = `alias-of-${name}`;
  await ok(s.req('POST', '/admin/aliases', { alias, model: name }), 201);
  err(await s.req('DELETE', `/admin/models/${m.id}`), 409);
  await ok(s.req('DELETE', `/admin/aliases/${alias}`));
  assert.deepEqual(await ok(s.req('DELETE', `/admin/models/${m.id}`)), { id: m.id, object: 'model_route', deleted: true });
  await ok(s.req('DELETE', `/admin/models/${bare.id}`));
  err(await s.req('GET', `/admin/models/${m.id}`), 404);

  // Configuration-owned rows are read-only.
  const cfg = await byName('/admin/models', 'gpt-4o');
  assert.equal(cfg.source, 'config');
  err(await s.req('PATCH', `/admin/models/${cfg.id}`, { upstream_model: 'other' }), 409);
  err(await s.req('DELETE', `/admin/models/${cfg.id}`), 409);
  const again = await ok(s.req('GET', `/admin/models/${cfg.id}`));
  assert.equal(again.upstream_model, cfg.upstream_model);
});

test('model prices: GET all rows and the winners, PUT admin rows, DELETE them; 400/422', T, async () => {
  const name = `priced-${rnd()}`;
  const pm = `pm-${name}`;
  const m = await ok(s.req('POST', '/admin/models', { name, provider: 'mock', pricing_model: pm }), 201);
  written.push({ id: m.id, kind: 'model' });
  let pr = await ok(s.req('GET', `/admin/models/${m.id}/prices`));
  assert.equal(pr.pricing_model, pm);
  assert.deepEqual(pr.components, []);
  assert.deepEqual(pr.effective, []);

  const put = await ok(s.req('PUT', `/admin/models/${m.id}/prices`, { components: [
    { direction: 'input', unit: '1m_tokens', price: '1.5' },
    { direction: 'output', modality: 'text', unit: '1k_tokens', tier: 'default', price: '0.0031' },
  ] }));
  assert.equal(put.pricing_model, pm);
  pr = await ok(s.req('GET', `/admin/models/${m.id}/prices`));
  const norm = (rows) => rows.map((c) => `${c.direction}/${c.modality}/${c.unit}/${c.tier}/${c.source}=${decNorm(c.price)}`).sort();
  const expected = ['input/text/1m_tokens/default/admin=1.5', 'output/text/1k_tokens/default/admin=0.0031'];
  assert.deepEqual(norm(pr.components), expected, JSON.stringify(pr));
  assert.deepEqual(norm(pr.effective), expected, JSON.stringify(pr));
  const detail = await ok(s.req('GET', `/admin/models/${m.id}`));
  assert.deepEqual(norm(detail.prices), expected, 'GET /admin/models/{id} shows the effective prices');

  // A second PUT replaces the admin rows.
  await ok(s.req('PUT', `/admin/models/${m.id}/prices`, { components: [{ direction: 'input', unit: 'token', price: '0.000002' }] }));
  pr = await ok(s.req('GET', `/admin/models/${m.id}/prices`));
  assert.deepEqual(norm(pr.components), ['input/text/token/default/admin=0.000002'], JSON.stringify(pr));

  const bad422 = [
    [{ components: [{ direction: 'sideways', unit: 'token', price: '1' }] }, /direction/],
    [{ components: [{ direction: 'input', unit: 'tokens', price: '1' }] }, /unit/],
    [{ components: [{ direction: 'input', unit: 'token', modality: 'smell', price: '1' }] }, /modality/],
    [{ components: [{ direction: 'input', unit: 'token', price: '-1' }] }, /price/],
    [{ components: [{ direction: 'input', unit: 'token', price: 'abc' }] }, /price/],
    [{ components: [{ direction: 'input', unit: 'token', price: '0.0000000000000000000000001' }] }, /price/],
  ];
  for (const [body, param] of bad422) err(await s.req('PUT', `/admin/models/${m.id}/prices`, body), 422, param, JSON.stringify(body));
  const bad400 = [
    [{ components: [{ direction: 'input', unit: 'token', price: 1.5 }] }, /price/],
    [{ components: 'input' }, /components/],
    [{ components: [{ direction: 'input', unit: 'token', price: '1', colour: 'red' }] }, /colour/],
    [{ components: [], extra: true }, /extra/],
  ];
  for (const [body, param] of bad400) err(await s.req('PUT', `/admin/models/${m.id}/prices`, body), 400, param, JSON.stringify(body));
  err(await s.req('PUT', `/admin/models/${m.id}/prices`, { components: [] }), [400, 422], /components/);
  err(await s.req('PUT', `/admin/models/${m.id}/prices`, { components: [{ direction: 'input', unit: 'token' }] }), [400, 422], /price/);
  pr = await ok(s.req('GET', `/admin/models/${m.id}/prices`));
  assert.deepEqual(norm(pr.components), ['input/text/token/default/admin=0.000002'], 'refused PUTs changed nothing');

  await ok(s.req('DELETE', `/admin/models/${m.id}/prices`));
  pr = await ok(s.req('GET', `/admin/models/${m.id}/prices`));
  assert.deepEqual(pr.components.filter((c) => c.source === 'admin'), []);
  err(await s.req('GET', '/admin/models/zz_no_such_model/prices'), 404);
  err(await s.req('PUT', '/admin/models/zz_no_such_model/prices', { components: [{ direction: 'input', unit: 'token', price: '1' }] }), 404);
  err(await s.req('DELETE', '/admin/models/zz_no_such_model/prices'), 404);

  // A configuration-owned model's prices may be set: admin rows win over the catalog and the file.
  const cfg = await byName('/admin/models', 'gpt-4o');
  const cat = await ok(s.req('GET', `/admin/models/${cfg.id}/prices`));
  assert.ok(cat.components.length > 0, `gpt-4o is priced by the catalog: ${JSON.stringify(cat)}`);
  await ok(s.req('PUT', `/admin/models/${cfg.id}/prices`, { components: [{ direction: 'input', unit: 'token', price: '0.000123' }] }));
  const won = await ok(s.req('GET', `/admin/models/${cfg.id}/prices`));
  const input = won.effective.filter((c) => c.direction === 'input' && c.modality === 'text' && c.tier === 'default');
  assert.deepEqual(input.map((c) => [c.source, decNorm(c.price)]), [['admin', '0.000123']], JSON.stringify(won));
  assert.ok(won.components.some((c) => c.source === 'catalog'), 'the catalog rows are still listed');
  await ok(s.req('DELETE', `/admin/models/${cfg.id}/prices`));
  assert.deepEqual(norm((await ok(s.req('GET', `/admin/models/${cfg.id}/prices`))).effective), norm(cat.effective));
});

/** A decimal string without trailing zeros ("1.50" → "1.5"). */
function decNorm(v) {
  const t = String(v);
  return t.includes('.') ? t.replace(/0+$/, '').replace(/\.$/, '') : t;
}

// ---------------------------------------------------------------------------------------------
// Aliases

test('aliases: CRUD, 409 on taken names and configuration-owned rows, 422 on unknown models', T, async () => {
  const alias = `al-${rnd()}`;
  const a = await ok(s.req('POST', '/admin/aliases', { alias, model: 'gpt-4o' }), 201);
  written.push({ id: alias, kind: 'alias' });
  assert.deepEqual([a.alias, a.object, a.model, a.source], [alias, 'alias', 'gpt-4o', 'admin']);
  assertTime(a.created_at, 'created_at');
  assert.deepEqual(await ok(s.req('GET', `/admin/aliases/${alias}`)), a);
  const all = await listAll('/admin/aliases');
  assert.ok(all.some((x) => x.alias === alias));
  const fast = all.find((x) => x.alias === 'fast');
  assert.deepEqual([fast?.model, fast?.source], ['gpt-4o-mini', 'config']);

  const b = await ok(s.req('PATCH', `/admin/aliases/${alias}`, { model: 'echo-chat' }));
  assert.equal(b.model, 'echo-chat');
  err(await s.req('PATCH', `/admin/aliases/${alias}`, { model: 'no-such-model' }), 422, 'model');
  err(await s.req('POST', '/admin/aliases', { alias: `x-${rnd()}`, model: 'no-such-model' }), 422, 'model');
  err(await s.req('POST', '/admin/aliases', { alias: '', model: 'gpt-4o' }), 422, 'alias');
  err(await s.req('POST', '/admin/aliases', { alias, model: 'gpt-4o' }), 409);
  err(await s.req('POST', '/admin/aliases', { alias: 'fast', model: 'gpt-4o' }), 409);
  err(await s.req('POST', '/admin/aliases', { alias: 'gpt-4o', model: 'echo-chat' }), 409, undefined, 'a model name');
  err(await s.req('PATCH', '/admin/aliases/fast', { model: 'gpt-4o' }), 409);
  err(await s.req('DELETE', '/admin/aliases/fast'), 409);
  assert.equal((await ok(s.req('GET', '/admin/aliases/fast'))).model, 'gpt-4o-mini', 'unchanged');

  assert.deepEqual(await ok(s.req('DELETE', `/admin/aliases/${alias}`)), { id: alias, object: 'alias', deleted: true });
  err(await s.req('GET', `/admin/aliases/${alias}`), 404);
  err(await s.req('PATCH', `/admin/aliases/${alias}`, { model: 'gpt-4o' }), 404);
  err(await s.req('DELETE', `/admin/aliases/${alias}`), 404);
});

// ---------------------------------------------------------------------------------------------
// Users and service tokens

const USER_FIELDS = ['id', 'object', 'email', 'role', 'enabled', 'created_at', 'updated_at'];

test('users: CRUD, passwords stored as Argon2id only, 409 on taken emails and on losing the last admin, 422', T, async () => {
  const email = `user-${rnd()}@llmgw.test`;
  const password = `user password ${rnd()}`;
  secrets.add(password);
  const u = await ok(s.req('POST', '/admin/users', { email, password, role: 'editor' }), 201);
  written.push({ id: u.id, kind: 'user' });
  for (const f of USER_FIELDS) assert.ok(Object.hasOwn(u, f), `user object lacks ${f}: ${JSON.stringify(u)}`);
  assert.deepEqual(Object.keys(u).filter((f) => /pass|hash|secret/i.test(f)), [], `no password field: ${JSON.stringify(u)}`);
  assert.deepEqual([u.object, u.email, u.role, u.enabled], ['admin_user', email, 'editor', true]);
  const list = await s.req('GET', '/admin/users?limit=500');
  assert.ok(!list.text.includes(password) && !list.text.includes('$argon2'), 'no password or hash in the list');
  assert.deepEqual(await ok(s.req('GET', `/admin/users/${u.id}`)), u);

  const [row] = await s.gw.sql(`SELECT password_hash FROM admin_users WHERE id = '${u.id}'`);
  assert.match(row.password_hash, /^\$argon2id\$v=19\$m=65536,t=1,p=4\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]{43}$/,
    `Argon2id t=1 m=64 MiB p=4 with a 32-byte tag: ${row.password_hash}`);
  await assertNotStoredInClear(password, 'a user password');

  // PATCH each field; the new password and email sign in, the old ones do not.
  const email2 = `renamed-${email}`;
  const password2 = `new password ${rnd()}`;
  secrets.add(password2);
  let q = await ok(s.req('PATCH', `/admin/users/${u.id}`, { email: email2 }));
  assert.equal(q.email, email2);
  q = await ok(s.req('PATCH', `/admin/users/${u.id}`, { password: password2 }));
  assert.equal(q.email, email2);
  q = await ok(s.req('PATCH', `/admin/users/${u.id}`, { role: 'viewer' }));
  assert.equal(q.role, 'viewer');
  const login = await adminLogin(s.gw.port, email2, password2, { localAddress: freshAddress() });
  assert.equal(login.subject.role, 'viewer');
  assert.equal((await adminLoginRaw(s.gw.port, email2, password, { localAddress: freshAddress() })).status, 401);
  assert.equal((await adminLoginRaw(s.gw.port, email, password2, { localAddress: freshAddress() })).status, 401);

  err(await s.req('POST', '/admin/users', { email: email2.toUpperCase(), password: 'long enough password', role: 'viewer' }), 409);
  err(await s.req('POST', '/admin/users', { email: ADMIN_EMAIL, password: 'long enough password', role: 'viewer' }), 409);
  err(await s.req('PATCH', `/admin/users/${u.id}`, { email: ADMIN_EMAIL }), 409);
  const bad = [
    [{ email: 'not-an-email', password: 'long enough password', role: 'viewer' }, 'email'],
    [{ email: `a-${rnd()}@llmgw.test`, password: 'long enough password', role: 'root' }, 'role'],
    [{ email: `a-${rnd()}@llmgw.test`, password: '12345678901', role: 'viewer' }, 'password'],
    [{ email: `a-${rnd()}@llmgw.test`, password: 'p'.repeat(257), role: 'viewer' }, 'password'],
  ];
  for (const [body, param] of bad) err(await s.req('POST', '/admin/users', body), 422, param, JSON.stringify({ ...body, password: '…' }));
  for (const len of [12, 256]) {
    const pw = 'q'.repeat(len - 4) + rnd().slice(0, 4);
    secrets.add(pw);
    const b = await ok(s.req('POST', '/admin/users', { email: `len${len}-${rnd()}@llmgw.test`, password: pw, role: 'viewer' }), 201);
    await ok(s.req('DELETE', `/admin/users/${b.id}`));
  }

  // The bootstrap admin is the only enabled admin: it cannot be demoted, disabled or deleted.
  const users = await listAll('/admin/users');
  assert.deepEqual(users.filter((x) => x.role === 'admin' && x.enabled).map((x) => x.id), [s.admin.id],
    'this test expects the bootstrap admin to be the only enabled admin');
  err(await s.req('PATCH', `/admin/users/${s.admin.id}`, { role: 'editor' }), 409);
  err(await s.req('PATCH', `/admin/users/${s.admin.id}`, { enabled: false }), 409);
  err(await s.req('DELETE', `/admin/users/${s.admin.id}`), 409);
  // A second admin, disabled, does not count.
  const second = await ok(s.req('POST', '/admin/users', { email: `second-admin-${rnd()}@llmgw.test`,
    password: 'second admin password', role: 'admin', enabled: false }), 201);
  assert.equal(second.enabled, false);
  err(await s.req('PATCH', `/admin/users/${s.admin.id}`, { role: 'viewer' }), 409);
  // Enabled, it does: now the second one can go, and then the first is the last again.
  await ok(s.req('PATCH', `/admin/users/${second.id}`, { enabled: true }));
  await ok(s.req('PATCH', `/admin/users/${second.id}`, { role: 'editor' }));
  await ok(s.req('PATCH', `/admin/users/${second.id}`, { role: 'admin' }));
  assert.deepEqual(await ok(s.req('DELETE', `/admin/users/${second.id}`)), { id: second.id, object: 'admin_user', deleted: true });
  err(await s.req('DELETE', `/admin/users/${s.admin.id}`), 409);
  assert.equal((await ok(s.req('GET', '/admin/auth/me'))).role, 'admin');

  await ok(s.req('DELETE', `/admin/users/${u.id}`));
  err(await s.req('GET', `/admin/users/${u.id}`), 404);
  err(await s.req('PATCH', `/admin/users/${u.id}`, { role: 'viewer' }), 404);
  err(await s.req('DELETE', `/admin/users/${u.id}`), 404);
});

test('service tokens: the secret shown once, stored as Argon2id; PATCH, regenerate, DELETE; 409/422', T, async () => {
  const service = `svc-${rnd()}`;
  const t = await ok(s.req('POST', '/admin/tokens', { service_name: service, role: 'viewer' }), 201);
  written.push({ id: t.id, kind: 'token' });
  secrets.add(t.token);
  assert.deepEqual([t.object, t.service_name, t.role, t.enabled], ['service_token', service, 'viewer', true]);
  assert.equal(typeof t.token, 'string');
  const got = await s.req('GET', `/admin/tokens/${t.id}`);
  assert.equal(got.status, 200, got.text);
  assert.equal(got.json.token, undefined);
  assert.deepEqual(got.json, (({ token, ...rest }) => rest)(t));
  const list = await s.req('GET', '/admin/tokens?limit=500');
  assert.ok(!list.text.includes(t.token) && !list.text.includes('$argon2'));
  const [row] = await s.gw.sql(`SELECT token_hash FROM admin_tokens WHERE id = '${t.id}'`);
  assert.match(row.token_hash, /^\$argon2id\$v=19\$m=65536,t=1,p=4\$/, row.token_hash);
  await assertNotStoredInClear(t.token, 'a service token');

  let q = await ok(s.req('PATCH', `/admin/tokens/${t.id}`, { role: 'editor' }));
  assert.equal(q.role, 'editor');
  q = await ok(s.req('PATCH', `/admin/tokens/${t.id}`, { enabled: false }));
  assert.deepEqual([q.enabled, q.role], [false, 'editor']);
  q = await ok(s.req('PATCH', `/admin/tokens/${t.id}`, { enabled: true }));

  const signIn = (token) => request(s.gw.port, { method: 'POST', path: '/admin/auth/token', localAddress: freshAddress(),
    body: { service_name: service, token } });
  assert.equal((await signIn(t.token)).status, 200);
  const g = await ok(s.req('POST', `/admin/tokens/${t.id}/regenerate`));
  secrets.add(g.token);
  assert.equal(typeof g.token, 'string');
  assert.notEqual(g.token, t.token);
  assert.equal(g.id, t.id);
  assert.equal((await signIn(t.token)).status, 401, 'the old secret is refused at once');
  assert.equal((await signIn(g.token)).status, 200, 'the new one signs in');

  err(await s.req('POST', '/admin/tokens', { service_name: service, role: 'viewer' }), 409);
  err(await s.req('POST', '/admin/tokens', { service_name: `x-${rnd()}`, role: 'root' }), 422, 'role');
  err(await s.req('POST', '/admin/tokens', { service_name: '', role: 'viewer' }), 422, 'service_name');
  err(await s.req('PATCH', `/admin/tokens/${t.id}`, { role: 'root' }), 422, 'role');

  assert.deepEqual(await ok(s.req('DELETE', `/admin/tokens/${t.id}`)), { id: t.id, object: 'service_token', deleted: true });
  err(await s.req('GET', `/admin/tokens/${t.id}`), 404);
  err(await s.req('POST', `/admin/tokens/${t.id}/regenerate`), 404);
  assert.equal((await signIn(g.token)).status, 401);
});

// ---------------------------------------------------------------------------------------------
// 400 on every write route

/** [method, url, a valid body] of every write route, on rows made for this test. */
async function writeRoutes() {
  const r = rnd();
  const key = await createKey({ name: `routes-${r}` });
  const prov = await ok(s.req('POST', '/admin/providers', { name: `routes-prov-${r}`, type: 'echo' }), 201);
  const model = await ok(s.req('POST', '/admin/models', { name: `routes-model-${r}`, provider: prov.name }), 201);
  const alias = await ok(s.req('POST', '/admin/aliases', { alias: `routes-alias-${r}`, model: model.name }), 201);
  const user = await ok(s.req('POST', '/admin/users', { email: `routes-${r}@llmgw.test`, password: `routes password ${r}`, role: 'viewer' }), 201);
  const tok = await ok(s.req('POST', '/admin/tokens', { service_name: `routes-svc-${r}`, role: 'viewer' }), 201);
  secrets.add(`routes password ${r}`);
  secrets.add(tok.token);
  return {
    rows: { key, prov, model, alias, user, tok },
    routes: [
      ['POST', '/admin/keys', { name: 'n', rpm_limit: 1, enabled: true, tags: ['a'], metadata: { a: 'b' } }],
      ['PATCH', `/admin/keys/${key.id}`, { name: 'n', rpm_limit: 1, enabled: true, tags: ['a'], metadata: { a: 'b' } }],
      ['POST', '/admin/providers', { name: `p-${r}`, type: 'echo', connect_timeout_ms: 1000, enabled: true }],
      ['PATCH', `/admin/providers/${prov.id}`, { name: `p2-${r}`, connect_timeout_ms: 1000, enabled: true }],
      ['POST', '/admin/models', { name: `m-${r}`, provider: prov.name, upstream_model: 'u', enabled: true }],
      ['PATCH', `/admin/models/${model.id}`, { upstream_model: 'u', enabled: true }],
      ['PUT', `/admin/models/${model.id}/prices`, { components: [{ direction: 'input', unit: 'token', price: '1' }] }],
      ['POST', '/admin/aliases', { alias: `a-${r}`, model: model.name }],
      ['PATCH', `/admin/aliases/${alias.alias}`, { model: model.name }],
      ['POST', '/admin/users', { email: `u-${r}@llmgw.test`, password: 'long enough password', role: 'viewer', enabled: true }],
      ['PATCH', `/admin/users/${user.id}`, { email: `u2-${r}@llmgw.test`, role: 'viewer', enabled: true }],
      ['POST', '/admin/tokens', { service_name: `s-${r}`, role: 'viewer' }],
      ['PATCH', `/admin/tokens/${tok.id}`, { role: 'viewer', enabled: true }],
      ['POST', '/admin/auth/login', { email: `u-${r}@llmgw.test`, password: 'long enough password' }],
      ['POST', '/admin/auth/token', { service_name: `s-${r}`, token: 'x' }],
    ],
  };
}

/** A value of another JSON type than `v`. */
function wrongType(v) {
  if (typeof v === 'string') return 12345;
  if (typeof v === 'number') return '12';
  if (typeof v === 'boolean') return 'true';
  if (Array.isArray(v)) return 'not-an-array';
  return ['not', 'an', 'object'];
}

test('400 on every write route: not JSON, not an object, unknown fields, wrong types (naming the field)', T, async () => {
  const { rows, routes } = await writeRoutes();
  const snapshot = async () => JSON.stringify(await Promise.all([
    ok(s.req('GET', `/admin/keys/${rows.key.id}`)), ok(s.req('GET', `/admin/providers/${rows.prov.id}`)),
    ok(s.req('GET', `/admin/models/${rows.model.id}/prices`)), ok(s.req('GET', `/admin/aliases/${rows.alias.alias}`)),
    ok(s.req('GET', `/admin/users/${rows.user.id}`)), ok(s.req('GET', `/admin/tokens/${rows.tok.id}`)),
    listAll('/admin/keys'), listAll('/admin/providers'), listAll('/admin/models'), listAll('/admin/aliases'),
    listAll('/admin/users'), listAll('/admin/tokens'),
  ]));
  const before = await snapshot();
  const wrong = [];
  const send = async (method, url, body, expectParam, what) => {
    const r = await adminRequest(s.gw.port, s.admin.token, method, url, body,
      { localAddress: url.startsWith('/admin/auth/') ? freshAddress() : undefined });
    const e = r.json?.error;
    if (r.status !== 400 || !e || typeof e.message !== 'string') {
      wrong.push(`${method} ${url} ${what} → ${r.status} ${r.text.slice(0, 200)}`);
    } else if (expectParam !== undefined && !String(e.param).startsWith(expectParam)) {
      wrong.push(`${method} ${url} ${what} → 400 with param ${e.param}, expected ${expectParam}`);
    }
  };
  for (const [method, url, valid] of routes) {
    for (const raw of ['not json', '{"name":', '{"a":1}}', '', '[]', '"string"', '42', 'null', 'true', '{"a":1,}', "{'a':1}"]) {
      await send(method, url, raw, undefined, `body ${JSON.stringify(raw)}`);
    }
    await send(method, url, { ...valid, zz_unknown_field: 1 }, 'zz_unknown_field', 'an unknown field');
    for (const [field, value] of Object.entries(valid)) {
      await send(method, url, { ...valid, [field]: wrongType(value) }, field, `${field} of a wrong type`);
    }
  }
  assert.deepEqual(wrong, [], 'write routes that did not answer 400 as they should');
  assert.equal(await snapshot(), before, 'a request answered 400 changed something');
});

// ---------------------------------------------------------------------------------------------
// Fuzz: malformed bodies never get a 5xx nor stop the process

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIELDS = ['name', 'email', 'password', 'role', 'enabled', 'type', 'base_url', 'api_key', 'provider', 'model',
  'alias', 'upstream_model', 'pricing_model', 'components', 'direction', 'price', 'unit', 'tier', 'modality',
  'service_name', 'token', 'rpm_limit', 'tpm_limit', 'max_concurrent', 'budget_usd', 'budget_period', 'expires_at',
  'tags', 'metadata', 'allowed_models', 'connect_timeout_ms', 'first_byte_timeout_ms', 'idle_timeout_ms',
  '__proto__', 'constructor', '', 'x'.repeat(300), 'naïve', 'a\u0000b'];
const RAW_NUMBERS = ['123456789012345678901234567890', '1e999', '-1e999', '9223372036854775808', '-9223372036854775809',
  '0.0000000000000000000000000001', '-0', '1E+2', '18446744073709551616', '4294967296', '2147483648', '-2147483649'];

/** Serialises a fuzz value; {raw} objects are written as is (numbers JSON.stringify cannot make). */
function ser(v) {
  if (v && typeof v === 'object' && typeof v.raw === 'string') return v.raw;
  if (Array.isArray(v)) return `[${v.map(ser).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${ser(x)}`).join(',')}}`;
  return JSON.stringify(v);
}

function fuzzString(rng) {
  switch (Math.floor(rng() * 12)) {
    case 0: return '';
    case 1: return 'a\u0000b';
    case 2: return '\ud800';
    case 3: return 'x'.repeat(1 + Math.floor(rng() * 70_000));
    case 4: return '名前🙂\u202e';
    case 5: return '../../etc/passwd';
    case 6: return "'; DROP TABLE api_keys; --";
    case 7: return '%s%n%x%p';
    case 8: return 'https://127.0.0.1:1/v1';
    case 9: return ['viewer', 'editor', 'admin', 'input', 'token', 'daily', 'openai', 'echo'][Math.floor(rng() * 8)];
    case 10: return `${Math.floor(rng() * 1e6)}`;
    default: return Array.from({ length: Math.floor(rng() * 20) }, () => String.fromCharCode(32 + Math.floor(rng() * 95))).join('');
  }
}

function fuzzValue(rng, depth = 0) {
  const k = Math.floor(rng() * (depth > 3 ? 6 : 9));
  switch (k) {
    case 0: return null;
    case 1: return rng() < 0.5;
    case 2: return [0, -1, 1, 1.5, 1e308, -1e308, 2 ** 53 + 1, 1e-300, 65536][Math.floor(rng() * 9)];
    case 3: return { raw: RAW_NUMBERS[Math.floor(rng() * RAW_NUMBERS.length)] };
    case 4:
    case 5: return fuzzString(rng);
    case 6: return Array.from({ length: Math.floor(rng() * 4) }, () => fuzzValue(rng, depth + 1));
    default: {
      const o = Object.create(null); // so that "__proto__" is an ordinary key
      for (let i = Math.floor(rng() * 5); i > 0; i--) o[FIELDS[Math.floor(rng() * FIELDS.length)]] = fuzzValue(rng, depth + 1);
      return o;
    }
  }
}

/** Bodies that are not valid JSON, or valid JSON that parsers get wrong. */
const PATHOLOGICAL = [
  '['.repeat(100_000), `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`, `${'['.repeat(5_000)}${']'.repeat(5_000)}`,
  Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf]), Buffer.from('"}')]),
  Buffer.concat([Buffer.from('{"email":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('@x.test","password":"p"}')]),
  Buffer.from('{"name":"a\u0000b"}'), Buffer.from([0x7b, 0x00, 0x7d]),
  '{"name":"\\ud800"}', '{"name":"\\u0000"}', '{"name":"\\x41"}', '{"name":"a', '{"name":"a" "b":1}',
  '\ufeff{"name":"bom"}', '{"name":"a"}garbage', '{"name":"a"}{"name":"b"}', 'NaN', 'Infinity', '-', '\u0000',
  ' ', '{"rpm_limit":1e999999999}', '{"name":"a","name":5}', '{"name":"a","rpm_limit":1e400}',
  '{"components":[{"direction":"input","price":"1","unit":"token"}],"components":7}',
  `{"name":"${'x'.repeat(2 << 20)}"}`, `{"tags":[${Array.from({ length: 50_000 }, () => '"t"').join(',')}]}`,
  `{${Array.from({ length: 20_000 }, (_, i) => `"k${i}":1`).join(',')}}`,
];

test('fuzz: ~200 random bodies and the pathological ones on every POST/PATCH/PUT route: no 5xx, the process stays up', { timeout: 600_000 }, async () => {
  const seed = Number(process.env.LLMGW_FUZZ_SEED ?? Date.now() % 2 ** 31);
  const rng = mulberry32(seed);
  const { routes } = await writeRoutes();
  const allowed = new Set([200, 201, 400, 401, 404, 409, 413, 422, 429]);
  const wrong = [];
  const send = async (method, url, body, what) => {
    let r;
    try {
      r = await adminRequest(s.gw.port, s.admin.token, method, url, body,
        { localAddress: url.startsWith('/admin/auth/') ? freshAddress() : undefined, timeoutMs: 20_000 });
    } catch (e) {
      wrong.push(`${method} ${url} ${what}: ${e.message}`);
      return;
    }
    if (!allowed.has(r.status) || (r.status >= 400 && !r.json?.error)) {
      wrong.push(`${method} ${url} ${what} → ${r.status} ${r.text.slice(0, 200)}`);
    }
  };
  let sent = 0;
  for (const [method, url] of routes) {
    for (const [i, body] of PATHOLOGICAL.entries()) {
      await send(method, url, body, `pathological #${i}`);
      sent += 1;
    }
    if (s.gw.exit) break;
  }
  for (let i = 0; i < 200 && !s.gw.exit; i++) {
    const [method, url, valid] = routes[Math.floor(rng() * routes.length)];
    let body;
    const kind = rng();
    if (kind < 0.4) {
      body = ser(fuzzValue(rng));
    } else if (kind < 0.8) {
      // A valid body with one field made random, or one random field added.
      const o = Object.assign(Object.create(null), valid);
      const fields = Object.keys(o);
      const f = rng() < 0.7 && fields.length ? fields[Math.floor(rng() * fields.length)] : FIELDS[Math.floor(rng() * FIELDS.length)];
      o[f] = fuzzValue(rng, 1);
      body = ser(o);
    } else {
      const text = ser(fuzzValue(rng));
      const cut = Math.floor(rng() * text.length);
      body = Buffer.concat([Buffer.from(text.slice(0, cut)), Buffer.from([Math.floor(rng() * 256)]), Buffer.from(text.slice(cut))]);
    }
    await send(method, url, body, `random #${i} (seed ${seed})`);
    sent += 1;
  }
  assert.equal(s.gw.exit, null, `the gateway exited during the fuzz (seed ${seed}): ${s.gw.stderr.slice(-3000)}`);
  assert.deepEqual(wrong, [], `answers out of contract (seed ${seed}, LLMGW_FUZZ_SEED to replay)`);
  assert.ok(sent >= 200);
  assert.equal((await request(s.gw.port, { path: '/readyz' })).status, 200);
  assert.equal((await ok(s.req('GET', '/admin/auth/me'))).id, s.admin.id);
  await createKey({ name: 'after-fuzz' });
});

test('a NUL byte in a path id, a query value or a sign-in name: 404, 400, 401 on either store, never 5xx', T, async () => {
  // PostgreSQL text cannot hold a NUL: such a value must be refused (or match nothing) before
  // it reaches the store, as it matches nothing on SQLite.
  for (const p of ['/admin/keys/key_%00', '/admin/keys/a%00b/spend', '/admin/providers/a%00b', '/admin/models/a%00b/prices',
    '/admin/aliases/a%00b', '/admin/users/a%00b', '/admin/tokens/a%00b']) {
    assertOpenAIError(assert, await s.req('GET', p), 404);
  }
  assertOpenAIError(assert, await s.req('PATCH', '/admin/keys/a%00b', { name: 'x' }), 404);
  for (const p of ['/admin/keys?tag=a%00b', '/admin/audit?resource_id=a%00b', '/admin/audit?actor_id=a%00b',
    '/admin/usage?key_id=a%00b', '/admin/usage?model=a%00b', '/admin/keys?a%00=1']) {
    assertOpenAIError(assert, await s.req('GET', p), 400, 'invalid_request_error');
  }
  const signIn = (p, body) => adminRequest(s.gw.port, undefined, 'POST', p, body, { localAddress: freshAddress() });
  assertOpenAIError(assert, await signIn('/admin/auth/login', '{"email":"a\\u0000b@llmgw.test","password":"any password 123"}'),
    401, 'authentication_error');
  assertOpenAIError(assert, await signIn('/admin/auth/token', '{"service_name":"a\\u0000b","token":"llmgw-st-x"}'),
    401, 'authentication_error');
});

// ---------------------------------------------------------------------------------------------
// The audit trail (last: it checks the writes of every test above)

test('audit: a record per write with before/after, actor and client; newest first; filters; cursors', T, async () => {
  const k = await createKey({ name: 'audited', tags: ['a'] });
  await ok(s.req('PATCH', `/admin/keys/${k.id}`, { name: 'audited-renamed' }));
  const regen = await ok(s.req('POST', `/admin/keys/${k.id}/regenerate`));
  secrets.add(regen.key);
  await ok(s.req('DELETE', `/admin/keys/${k.id}`));

  const recs = await listAll('/admin/audit', `resource_id=${k.id}`);
  assert.ok(recs.length >= 4, `4 records for ${k.id}: ${JSON.stringify(recs)}`);
  assert.ok(recs.every((r) => r.resource_id === k.id), 'filtered by resource_id');
  const actions = recs.map((r) => r.action);
  assert.deepEqual(actions.slice(0, 4), ['delete', 'regenerate', 'update', 'create'], `newest first: ${actions}`);
  const [del, , upd, cre] = recs;
  for (const r of recs) {
    assert.deepEqual(r.actor, { type: 'user', id: s.admin.id, name: ADMIN_EMAIL }, JSON.stringify(r));
    assertTime(r.at, 'at');
    assert.equal(typeof r.resource_type, 'string');
    assert.equal(typeof r.request_id, 'string');
    assert.ok(r.request_id.length > 0);
    assert.ok(String(r.client_ip).includes('127.0.0.1'), `client_ip ${r.client_ip}`);
  }
  assert.equal(cre.before, null, 'nothing before a create');
  assert.equal(cre.after?.name, 'audited', JSON.stringify(cre));
  assert.equal(upd.before?.name, 'audited', JSON.stringify(upd));
  assert.equal(upd.after?.name, 'audited-renamed', JSON.stringify(upd));
  assert.equal(del.before?.name, 'audited-renamed', JSON.stringify(del));
  assert.equal(del.after, null, 'nothing after a delete');
  const times = recs.map((r) => Date.parse(r.at));
  assert.ok(times.every((t, i) => i === 0 || t <= times[i - 1]), 'newest first');

  // Every resource written above has its records.
  const missing = [];
  for (const w of written) {
    const r = await ok(s.req('GET', `/admin/audit?resource_id=${encodeURIComponent(w.id)}&limit=500`));
    if (!r.data.some((x) => x.action === 'create')) missing.push(`${w.kind} ${w.id}`);
  }
  assert.deepEqual(missing, [], 'writes without a create record');

  // Filters: resource_type and actor_id.
  const type = cre.resource_type;
  const sameType = await ok(s.req('GET', `/admin/audit?resource_type=${encodeURIComponent(type)}&limit=50`));
  assert.ok(sameType.data.length > 0 && sameType.data.every((r) => r.resource_type === type));
  const mine = await ok(s.req('GET', `/admin/audit?actor_id=${s.admin.id}&limit=50`));
  assert.ok(mine.data.length > 0 && mine.data.every((r) => r.actor?.id === s.admin.id));
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  const future = await ok(s.req('GET', `/admin/audit?from=${tomorrow}`));
  assert.deepEqual(future.data, [], 'nothing from tomorrow on');

  // Cursors: limit=2 and limit=3 walk the same records, in the same order, as one page.
  assert.deepEqual(await listAll('/admin/audit', `resource_id=${k.id}`, 2), recs);
  assert.deepEqual(await listAll('/admin/audit', `resource_id=${k.id}`, 3), recs);
  const first = await ok(s.req('GET', `/admin/audit?resource_id=${k.id}&limit=2`));
  assert.equal(first.data.length, 2);
  assert.equal(first.has_more, true);
  assert.equal(typeof first.next_cursor, 'string');
});

test('audit: no secret in clear anywhere in the trail (API and database), the data dir or the log', T, async () => {
  const all = await listAll('/admin/audit');
  const text = JSON.stringify(all);
  const tables = (await s.gw.tableNames()).filter((t) => t.includes('audit'));
  assert.ok(tables.length > 0, 'an audit table in the database');
  let dbText = '';
  for (const t of tables) dbText += JSON.stringify(await s.gw.sql(`SELECT * FROM "${t}"`));
  const leaks = [];
  for (const secret of secrets) {
    if (text.includes(secret)) leaks.push(`audit API: ${secret.slice(0, 14)}…`);
    if (dbText.includes(secret)) leaks.push(`audit table: ${secret.slice(0, 14)}…`);
  }
  assert.deepEqual(leaks, [], 'secrets in the audit trail');
  for (const secret of secrets) await assertNotStoredInClear(secret, `secret ${secret.slice(0, 14)}…`);
  // The trail does record those writes (the check above is not vacuous).
  for (const w of written.filter((x) => ['provider', 'user', 'token'].includes(x.kind))) {
    assert.ok(all.some((r) => r.resource_id === w.id && r.action === 'create' && r.after), `create record of ${w.kind} ${w.id}`);
  }
});

test('logging: GET and PUT /admin/logging change the level of the answering process at once, audited', T, async () => {
  assert.deepEqual((await ok(s.req('GET', '/admin/logging'))), { object: 'logging', level: 'info' });
  const bad = await s.req('PUT', '/admin/logging', { level: 'verbose' });
  assert.equal(bad.status, 422, bad.text);
  assert.equal(bad.json.error.param, 'level');
  assert.equal((await s.req('PUT', '/admin/logging', { level: 'error', extra: 1 })).status, 400, 'unknown fields refused');
  assert.deepEqual(await ok(s.req('PUT', '/admin/logging', { level: 'error' })), { object: 'logging', level: 'error' });
  // At error, the info line of a configuration reload is not written.
  await sleep(300);  // lines are written a few times a second: those from before are in
  const mark = s.gw.logLines().length;
  await ok(s.req('POST', '/admin/keys', { name: 'quiet-while-error' }), 201);
  await sleep(500);
  const quiet = s.gw.logLines().slice(mark);
  assert.ok(!quiet.some((l) => l.level === 'info'), `no info line at level error: ${JSON.stringify(quiet)}`);
  assert.deepEqual(await ok(s.req('PUT', '/admin/logging', { level: 'info' })), { object: 'logging', level: 'info' });
  await ok(s.req('POST', '/admin/keys', { name: 'heard-at-info' }), 201);
  await waitUntil(() => s.gw.logLines().slice(mark).some((l) => l.msg === 'configuration reloaded'), 5_000, 'info lines again');
  const changes = (await ok(s.req('GET', '/admin/audit?resource_type=logging'))).data;
  assert.equal(changes.length, 2);
  assert.deepEqual(changes.map((c) => c.after.level), ['info', 'error'], 'newest first');
});
