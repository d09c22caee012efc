// API keys: the CLI (create, list, disable), 401 for missing/unknown/disabled/expired keys,
// 403 for a model outside the allowlist, 404 for an unknown model, the api-key header, and
// /v1/models per key.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { startStack, chat, chatBody, postJson, request, assertOpenAIError, KEY_RE, sleep, runCli } from './harness.mjs';

const T = { timeout: 30_000 };
const EXPIRY_DELAY_MS = 3_000;
let s;
let expiresAtMs;

/** RFC 3339 UTC, whole seconds, `ms` from now (rounded up to the next second). */
function rfc3339In(ms) {
  const t = Math.ceil((Date.now() + ms) / 1000) * 1000;
  return { text: new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z'), ms: t };
}

before(async () => {
  // The CLI refuses a past expiry, so the "expired" key expires a few seconds after start.
  const exp = rfc3339In(EXPIRY_DELAY_MS);
  expiresAtMs = exp.ms;
  s = await startStack({
    keys: {
      main: {},
      restricted: { models: ['gpt-4o-mini', 'echo-chat'] },
      expired: { expires: exp.text },
      future: { expires: '2099-12-31' },
      todisable: {},
      limits: { rpm: 1000, tpm: 100000, budget: 25 },
    },
  });
});

after(async () => {
  await s?.close();
});

const k = (name) => s.gw.keys[name].key;

test('keys create prints the id and the key alone on the last line', T, async () => {
  for (const [name, info] of Object.entries(s.gw.keys)) {
    assert.match(info.key, KEY_RE, name);
    assert.match(info.id, /^key_[0-9a-f]{16}$/, name);
  }
  const all = Object.values(s.gw.keys).map((x) => x.key);
  assert.equal(new Set(all).size, all.length, 'keys must be unique');
});

test('keys list --json shows metadata and never the key', T, async () => {
  const list = await s.gw.listKeys();
  assert.ok(Array.isArray(list), 'a JSON array');
  const text = JSON.stringify(list);
  for (const [name, info] of Object.entries(s.gw.keys)) {
    const row = list.find((r) => r.id === info.id);
    assert.ok(row, `key ${name} (${info.id}) missing from keys list`);
    assert.equal(row.name, name);
    assert.equal(typeof row.prefix, 'string');
    assert.ok(row.prefix.length >= 8 && info.key.startsWith(row.prefix), `prefix ${row.prefix} of ${name}`);
    assert.ok(row.prefix.length < info.key.length - 20, 'the prefix must not reveal the key');
    assert.equal(row.enabled, true);
    assert.ok(!text.includes(info.key), 'keys list must never print a key');
  }
  const restricted = list.find((r) => r.id === s.gw.keys.restricted.id);
  assert.deepEqual([...restricted.allowed_models].sort(), ['echo-chat', 'gpt-4o-mini']);
  const main = list.find((r) => r.id === s.gw.keys.main.id);
  assert.ok(main.allowed_models === null || (Array.isArray(main.allowed_models) && main.allowed_models.length === 0),
    `unrestricted key allowed_models: ${JSON.stringify(main.allowed_models)}`);
  const expired = list.find((r) => r.id === s.gw.keys.expired.id);
  assert.ok(expired.expires_at !== null && expired.expires_at !== undefined && expired.expires_at !== '',
    'expires_at is set');
  const expText = new Date(expiresAtMs).toISOString().slice(0, 19);
  assert.ok(String(expired.expires_at).includes(expText) || String(expired.expires_at).includes(expText.replace('T', ' ')) ||
    [expiresAtMs, expiresAtMs * 1000, expiresAtMs / 1000].includes(Number(expired.expires_at)),
    `expires_at of a key expiring at ${expText}Z: ${expired.expires_at}`);
  const future = list.find((r) => r.id === s.gw.keys.future.id);
  assert.ok(String(future.expires_at).includes('2099-12-31') || Number(future.expires_at) > Date.parse('2099-01-01') / 1000,
    `expires_at of a 2099-12-31 key: ${future.expires_at}`);
  assert.ok(main.expires_at === null || main.expires_at === undefined, `no expiry: ${main.expires_at}`);
});

test('a valid key works with Authorization: Bearer and with the api-key header', T, async () => {
  const a = await chat(s.gw.port, k('main'), chatBody('gpt-4o-mini', 'hi'));
  assert.equal(a.status, 200, a.text);
  const b = await postJson(s.gw.port, undefined, '/v1/chat/completions', chatBody('gpt-4o-mini', 'hi'),
    { headers: { 'api-key': k('main') } });
  assert.equal(b.status, 200, b.text);
  const f = await chat(s.gw.port, k('future'), chatBody('echo-chat', 'hi'));
  assert.equal(f.status, 200, `a key expiring in 2099: ${f.text}`);
  const l = await chat(s.gw.port, k('limits'), chatBody('echo-chat', 'hi'));
  assert.equal(l.status, 200, `a key with generous limits: ${l.text}`);
});

test('missing, malformed and unknown keys get 401 invalid_api_key', T, async () => {
  const body = chatBody('gpt-4o-mini', 'hi');
  const unknownKey = `sk-llmgw-${crypto.randomBytes(32).toString('base64url')}`;
  const cases = {
    'no header': {},
    'unknown key': { authorization: `Bearer ${unknownKey}` },
    'unknown key in api-key': { 'api-key': unknownKey },
    'garbage token': { authorization: 'Bearer abc' },
    'empty bearer': { authorization: 'Bearer ' },
    'basic scheme': { authorization: `Basic ${Buffer.from(`x:${k('main')}`).toString('base64')}` },
    'key with a changed character': { authorization: `Bearer ${k('main').slice(0, -1)}${k('main').endsWith('A') ? 'B' : 'A'}` },
  };
  for (const [label, headers] of Object.entries(cases)) {
    const res = await postJson(s.gw.port, undefined, '/v1/chat/completions', body, { headers });
    assert.equal(res.status, 401, `${label}: ${res.text}`);
    assertOpenAIError(assert, res, 401, 'authentication_error', 'invalid_api_key');
    assert.ok(!res.text.includes(k('main')), `${label}: the error must not echo a key`);
  }
  const models = await request(s.gw.port, { path: '/v1/models' });
  assertOpenAIError(assert, models, 401, 'authentication_error', 'invalid_api_key');
  const emb = await postJson(s.gw.port, undefined, '/v1/embeddings', { model: 'text-embedding-3-small', input: 'x' });
  assertOpenAIError(assert, emb, 401, 'authentication_error', 'invalid_api_key');
});


test('a key disabled while the server runs is refused within 1 s', T, async () => {
  const before = await chat(s.gw.port, k('todisable'), chatBody('echo-chat', 'hi'));
  assert.equal(before.status, 200, before.text);
  await s.gw.disableKey(s.gw.keys.todisable.id);
  const disabledAt = Date.now();
  let last;
  while (Date.now() - disabledAt < 3_000) {
    last = await chat(s.gw.port, k('todisable'), chatBody('echo-chat', 'hi'));
    if (last.status === 401) break;
    await sleep(25);
  }
  const took = Date.now() - disabledAt;
  assert.equal(last.status, 401, `still accepted 3 s after keys disable: ${last.status}`);
  assert.ok(took <= 1_000, `refused only after ${took} ms (contract: within 1 s)`);
  assertOpenAIError(assert, last, 401, 'authentication_error', 'invalid_api_key');
  const list = await s.gw.listKeys();
  assert.equal(list.find((r) => r.id === s.gw.keys.todisable.id).enabled, false);
  const other = await chat(s.gw.port, k('main'), chatBody('echo-chat', 'hi'));
  assert.equal(other.status, 200, 'other keys keep working');
});

test('a model outside the allowlist gets 403 permission_error', T, async () => {
  const ok = await chat(s.gw.port, k('restricted'), chatBody('gpt-4o-mini', 'hi'));
  assert.equal(ok.status, 200, ok.text);
  s.mock.clearRequests();
  const res = await chat(s.gw.port, k('restricted'), chatBody('gpt-4o', 'hi'));
  assertOpenAIError(assert, res, 403, 'permission_error');
  const emb = await postJson(s.gw.port, k('restricted'), '/v1/embeddings', { model: 'text-embedding-3-small', input: 'x' });
  assertOpenAIError(assert, emb, 403, 'permission_error');
  assert.equal(s.mock.recorded().length, 0, 'a refused request must not reach the upstream');
});

test('a duplicated "model" key cannot smuggle a forbidden model past the allowlist', T, async () => {
  s.mock.clearRequests();
  const text = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"dup"}],"model":"gpt-4o"}';
  const res = await chat(s.gw.port, k('restricted'), text);
  if (res.status === 200) {
    // Accepted: then the upstream must not be able to read a forbidden model from the body.
    const fwd = s.mock.recorded().at(-1).body_text;
    const models = [...fwd.matchAll(/"model"\s*:\s*"([^"]*)"/g)].map((m) => m[1]);
    assert.ok(models.every((m) => m === 'gpt-4o-mini-2024-07-18'),
      `a restricted key got a forbidden model to the upstream (last key wins in JSON parsers): ${fwd}`);
  } else {
    assert.ok([400, 403].includes(res.status), `status ${res.status}: ${res.text}`);
    assert.equal(s.mock.recorded().length, 0);
  }
});

test('an unknown model or alias gets 404 model_not_found', T, async () => {
  s.mock.clearRequests();
  const res = await chat(s.gw.port, k('main'), chatBody('no-such-model', 'hi'));
  assertOpenAIError(assert, res, 404, 'invalid_request_error', 'model_not_found');
  const emb = await postJson(s.gw.port, k('main'), '/v1/embeddings', { model: 'nope-embed', input: 'x' });
  assertOpenAIError(assert, emb, 404, 'invalid_request_error', 'model_not_found');
  assert.equal(s.mock.recorded().length, 0);
});

test('/v1/models lists only what a restricted key may use', T, async () => {
  const res = await request(s.gw.port, { path: '/v1/models', headers: { authorization: `Bearer ${k('restricted')}` } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.object, 'list');
  const ids = new Set(res.json.data.map((m) => m.id));
  for (const allowed of ['gpt-4o-mini', 'echo-chat']) assert.ok(ids.has(allowed), `${allowed} missing: ${[...ids]}`);
  for (const denied of ['gpt-4o', 'text-embedding-3-small', 'echo-embed']) {
    assert.ok(!ids.has(denied), `${denied} must not be listed for a restricted key: ${[...ids]}`);
  }
  // Every listed id must actually be usable by this key.
  for (const id of ids) {
    if (id.includes('embed')) continue;
    const r = await chat(s.gw.port, k('restricted'), chatBody(id, 'hi [mock:chunks=1]'));
    assert.equal(r.status, 200, `listed model ${id} refused: ${r.text}`);
  }
  const api = await request(s.gw.port, { path: '/v1/models', headers: { 'api-key': k('main') } });
  assert.equal(api.status, 200);
  assert.ok(api.json.data.length >= 7);
});

test('keys create refuses an expiry in the past', T, async () => {
  const r = await runCli(['keys', 'create', '--data-dir', s.gw.dataDir, '--name', 'past', '--expires', '2020-01-01'],
    { env: s.gw.env });
  assert.notEqual(r.code, 0, `a past expiry was accepted: ${r.stdout}`);
  assert.match(r.stderr, /expires/);
  assert.ok(!/sk-llmgw-/.test(r.stdout), 'no key printed');
});

// Last: it waits for the key's expiry to pass.
test('a key past its expiry gets 401 (and worked before)', T, async () => {
  if (Date.now() < expiresAtMs - 300) {
    const before = await chat(s.gw.port, k('expired'), chatBody('echo-chat', 'hi'));
    assert.equal(before.status, 200, `before its expiry: ${before.text}`);
  }
  const wait = expiresAtMs - Date.now();
  assert.ok(wait < EXPIRY_DELAY_MS + 1_000, 'bounded wait');
  if (wait > 0) await sleep(wait);
  let res;
  const deadline = Date.now() + 1_500;
  do {
    res = await chat(s.gw.port, k('expired'), chatBody('echo-chat', 'hi'));
    if (res.status === 401) break;
    await sleep(50);
  } while (Date.now() < deadline);
  assertOpenAIError(assert, res, 401, 'authentication_error', 'invalid_api_key');
});
