// Per-key rate limits on the embedded default: requests and tokens per sliding minute and
// requests in flight, 429 with Retry-After, OpenAI's x-ratelimit-* headers on every answer
// of a limited key (replacing the provider's), and limits changed live through the admin API.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startAdminStack, chat, chatBody, stream, assertOpenAIError } from './harness.mjs';

const T = { timeout: 60_000 };
let s;

before(async () => {
  s = await startAdminStack({ keys: { main: {} } });
});

after(async () => {
  await s?.close();
});

async function newKey(fields) {
  const r = await s.req('POST', '/admin/keys', { name: `rl-${Date.now()}-${Math.random()}`, ...fields });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

const hdr = (res, name) => res.headers[name];

test('a key with rpm 20 gets exactly 20 of 60 concurrent calls; the rest 429 with Retry-After', T, async () => {
  const key = await newKey({ rpm_limit: 20 });
  s.mock.clearRequests();
  const results = await Promise.all(
    Array.from({ length: 60 }, () => chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'hi'))));
  const ok = results.filter((r) => r.status === 200);
  const limited = results.filter((r) => r.status === 429);
  assert.equal(ok.length, 20);
  assert.equal(limited.length, 40);
  for (const r of limited) {
    assertOpenAIError(assert, r, 429, 'rate_limit_error', 'rate_limit_exceeded');
    const retry = Number(hdr(r, 'retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${hdr(r, 'retry-after')}`);
    assert.equal(hdr(r, 'x-ratelimit-limit-requests'), '20');
    assert.equal(hdr(r, 'x-ratelimit-remaining-requests'), '0');
  }
  // Remaining counts down over the accepted calls: 19..0, each once.
  const remaining = ok.map((r) => Number(hdr(r, 'x-ratelimit-remaining-requests'))).sort((a, b) => a - b);
  assert.deepEqual(remaining, Array.from({ length: 20 }, (_, i) => i));
  for (const r of ok) {
    assert.equal(hdr(r, 'x-ratelimit-limit-requests'), '20');
    assert.match(hdr(r, 'x-ratelimit-reset-requests'), /^(\d+ms|\d+(\.\d+)?s|\d+m\d+(\.\d+)?s)$/);
  }
  // Refused calls never reached the provider.
  assert.equal(s.mock.recorded().length, 20);
});

test('the provider\'s x-ratelimit-* headers are replaced by the key\'s own', T, async () => {
  const key = await newKey({ rpm_limit: 1000 });
  const r = await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'hi'));
  assert.equal(r.status, 200);
  assert.equal(hdr(r, 'x-ratelimit-limit-requests'), '1000', 'not the mock\'s 10000');
  assert.equal(hdr(r, 'x-ratelimit-remaining-requests'), '999');
  // A key without limits passes the provider's headers through untouched.
  const free = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', 'hi'));
  assert.equal(hdr(free, 'x-ratelimit-limit-requests'), '10000');
});

test('tokens per minute: the estimate is reserved, the actual usage reconciled', T, async () => {
  // The mock reports 10 prompt + 20 completion tokens unless told otherwise.
  const key = await newKey({ tpm_limit: 2000 });
  const first = await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'hi [mock:prompt_tokens=900] [mock:completion_tokens=900]'));
  assert.equal(first.status, 200);
  assert.equal(hdr(first, 'x-ratelimit-limit-tokens'), '2000');
  // 1800 counted after reconciliation: a call estimated at more than 200 tokens must wait.
  const big = await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'x'.repeat(2000)));
  assertOpenAIError(assert, big, 429, 'rate_limit_error', 'rate_limit_exceeded');
  assert.match(big.json.error.message, /tokens/);
  assert.ok(Number(hdr(big, 'retry-after')) >= 1);
  // A small one still fits.
  const small = await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'hi [mock:prompt_tokens=1] [mock:completion_tokens=1]'));
  assert.equal(small.status, 200, small.text);
  // A call larger than the whole limit can never pass: 429 without Retry-After.
  const huge = await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'y'.repeat(9000)));
  assertOpenAIError(assert, huge, 429, 'rate_limit_error', 'rate_limit_exceeded');
  assert.match(huge.json.error.message, /too large/i);
  assert.equal(hdr(huge, 'retry-after'), undefined);
});

test('max_concurrent: a third call in flight is refused, and a slot frees when a call ends', T, async () => {
  const key = await newKey({ max_concurrent: 2 });
  const slow = () => chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'slow [mock:delay_ms=800]'));
  const a = slow();
  const b = slow();
  await new Promise((r) => setTimeout(r, 200));
  const c = await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'third'));
  assertOpenAIError(assert, c, 429, 'rate_limit_error', 'rate_limit_exceeded');
  assert.match(c.json.error.message, /in flight/);
  assert.equal((await a).status, 200);
  assert.equal((await b).status, 200);
  const d = await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'after'));
  assert.equal(d.status, 200);
});

test('streams carry the headers too, and a limit set by PATCH applies to the next call', T, async () => {
  const key = await newKey({});
  const before = await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'hi'));
  assert.equal(before.status, 200);
  const patched = await s.req('PATCH', `/admin/keys/${key.id}`, { rpm_limit: 2 });
  assert.equal(patched.status, 200);
  const st = await stream(s.gw.port, { headers: { authorization: `Bearer ${key.key}` },
    body: chatBody('gpt-4o-mini', 'hi', { stream: true }) });
  assert.equal(st.status, 200);
  assert.equal(st.headers['x-ratelimit-limit-requests'], '2');
  assert.equal(st.headers['x-ratelimit-remaining-requests'], '1');
  assert.equal((await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'hi'))).status, 200);
  const third = await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'hi'));
  assert.equal(third.status, 429);
  // Lifting the limit (null) applies at once as well.
  assert.equal((await s.req('PATCH', `/admin/keys/${key.id}`, { rpm_limit: null })).status, 200);
  assert.equal((await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'hi'))).status, 200);
});

test('a call refused by the budget takes back its rate-limit counts and its slot', T, async () => {
  // gpt-4o-mini is priced by the catalog: a budget of a millionth of a dollar refuses any call.
  const key = await newKey({ rpm_limit: 3, max_concurrent: 1, budget_usd: '0.000001' });
  for (let i = 0; i < 6; i++) {
    const r = await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', `refused ${i}`));
    assertOpenAIError(assert, r, 429, 'insufficient_quota', 'insufficient_quota');
  }
  // The budget is lifted: the window is still empty, all three requests of the minute remain.
  assert.equal((await s.req('PATCH', `/admin/keys/${key.id}`, { budget_usd: null })).status, 200);
  const ok = await chat(s.gw.port, key.key, chatBody('gpt-4o-mini', 'now'));
  assert.equal(ok.status, 200, ok.text);
  assert.equal(hdr(ok, 'x-ratelimit-remaining-requests'), '2');
});

test('a model\'s own rpm is shared by every key and alias that reaches it', T, async () => {
  const tag = `${Date.now()}`;
  const prov = await s.req('POST', '/admin/providers',
    { name: `rl-prov-${tag}`, type: 'openai', base_url: s.mock.baseUrl, api_key: s.mock.apiKey });
  assert.equal(prov.status, 201, prov.text);
  const model = await s.req('POST', '/admin/models',
    { name: `rl-model-${tag}`, provider: prov.json.name, upstream_model: 'gpt-4o-mini', rpm_limit: 4 });
  assert.equal(model.status, 201, model.text);
  assert.equal(model.json.rpm_limit, 4);
  const alias = await s.req('POST', '/admin/aliases', { alias: `rl-alias-${tag}`, model: model.json.name });
  assert.equal(alias.status, 201, alias.text);
  const a = await newKey({});
  const b = await newKey({ rpm_limit: 100 });
  const calls = [];
  for (let i = 0; i < 10; i++) {
    calls.push(chat(s.gw.port, (i % 2 ? a : b).key, chatBody(i % 3 ? model.json.name : alias.json.alias, `m ${i}`)));
  }
  const results = await Promise.all(calls);
  assert.equal(results.filter((r) => r.status === 200).length, 4, 'four across both keys and the alias');
  for (const r of results.filter((x) => x.status !== 200)) {
    assertOpenAIError(assert, r, 429, 'rate_limit_error', 'rate_limit_exceeded');
    assert.match(r.json.error.message, /model `rl-model-/);
    assert.ok(Number(hdr(r, 'retry-after')) >= 1);
  }
  // Key b's own window was not charged for the calls the model refused.
  const again = await chat(s.gw.port, b.key, chatBody('gpt-4o-mini', 'other model'));
  assert.equal(again.status, 200);
  const usedByB = results.filter((r, i) => i % 2 === 0 && r.status === 200).length;
  assert.equal(hdr(again, 'x-ratelimit-remaining-requests'), String(100 - usedByB - 1));
});
