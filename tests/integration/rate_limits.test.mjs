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
