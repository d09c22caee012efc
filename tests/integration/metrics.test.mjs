// GET /metrics: the Prometheus text exposition after a mixed load. promtool (Debian's
// `prometheus`) checks the format; the counters must add up to the requests sent, and the
// overhead histogram must count exactly the requests that reached a provider.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { startStack, chat, chatBody, request, stream, authHeaders } from './harness.mjs';

const T = { timeout: 60_000 };
const TOKEN = 'metrics-token-0123456789';
let s;

before(async () => {
  s = await startStack({ env: { METRICS_TOKEN: TOKEN }, keys: { main: {}, slow: { rpm: 1 } } });
});

after(async () => {
  await s?.close();
});

async function scrape() {
  const r = await request(s.gw.port, { path: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  return r.text;
}

/** Sum of the samples of `name` whose labels include every pair of `want`. */
function sum(text, name, want = {}) {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = {};
    for (const [, k, v] of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    if (Object.entries(want).every(([k, v]) => labels[k] === v)) total += Number(m[4]);
  }
  return total;
}

test('/metrics needs the token when METRICS_TOKEN is set, and never shows a secret', T, async () => {
  const none = await request(s.gw.port, { path: '/metrics' });
  assert.equal(none.status, 401, none.text);
  const wrong = await request(s.gw.port, { path: '/metrics', headers: { authorization: 'Bearer nope' } });
  assert.equal(wrong.status, 401);
  const post = await request(s.gw.port, { method: 'POST', path: '/metrics', body: '{}' });
  assert.equal(post.status, 405);
  const text = await scrape();
  assert.ok(!text.includes(TOKEN), 'the metrics token is not in the exposition');
  assert.ok(!text.includes(s.key), 'no gateway key in the exposition');
  assert.ok(!text.includes(s.mock.apiKey), 'no provider key in the exposition');
});

test('a mixed load: promtool accepts the scrape, and the counters add up', T, async () => {
  const before = await scrape();
  const base = {
    ok: sum(before, 'llmgw_requests_total', { status_class: '2xx' }),
    c4: sum(before, 'llmgw_requests_total', { status_class: '4xx' }),
    c5: sum(before, 'llmgw_requests_total', { status_class: '5xx' }),
    overhead: sum(before, 'llmgw_gateway_overhead_seconds_count'),
    refusals: sum(before, 'llmgw_rate_limit_refusals_total'),
    upstream: sum(before, 'llmgw_upstream_errors_total'),
    ttft: sum(before, 'llmgw_time_to_first_token_seconds_count'),
  };
  // 2xx: 3 JSON through the mock, 2 streams, 2 echo. 4xx: a bad key, an unknown model, a
  // rate-limited call (the second of key `slow`), a bad body. 5xx: one provider 500.
  for (let i = 0; i < 3; i++) assert.equal((await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', `hi ${i}`))).status, 200);
  for (let i = 0; i < 2; i++) {
    const r = await stream(s.gw.port, { body: chatBody('gpt-4o-mini', `stream ${i}`, { stream: true }), headers: authHeaders(s.key) });
    assert.equal(r.status, 200);
  }
  for (let i = 0; i < 2; i++) assert.equal((await chat(s.gw.port, s.key, chatBody('echo-chat', `echo ${i}`))).status, 200);
  assert.equal((await chat(s.gw.port, 'sk-llmgw-wrong', chatBody('gpt-4o-mini', 'x'))).status, 401);
  assert.equal((await chat(s.gw.port, s.key, chatBody('no-such-model', 'x'))).status, 404);
  const slow = s.gw.keys.slow.key;
  assert.equal((await chat(s.gw.port, slow, chatBody('gpt-4o-mini', 'first'))).status, 200);
  assert.equal((await chat(s.gw.port, slow, chatBody('gpt-4o-mini', 'second'))).status, 429);
  const bad = await request(s.gw.port, { method: 'POST', path: '/v1/chat/completions', headers: authHeaders(s.key), body: '{"model":' });
  assert.equal(bad.status, 400);
  assert.equal((await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', 'fail [mock:status=500]'))).status, 500);
  // Counted under their own routes: a model list and a token count (not calls: no overhead).
  assert.equal((await request(s.gw.port, { path: '/v1/models', headers: authHeaders(s.key) })).status, 200);
  const count = await request(s.gw.port, { method: 'POST', path: '/v1/messages/count_tokens', headers: authHeaders(s.key),
    body: { model: 'echo-chat', messages: [{ role: 'user', content: 'one two three' }] } });
  assert.equal(count.status, 200, count.text);

  const text = await scrape();
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(check.error, undefined, `promtool could not run (install Debian's prometheus): ${check.error}`);
  assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}\n${check.stderr}`);

  assert.equal(sum(text, 'llmgw_requests_total', { status_class: '2xx' }) - base.ok, 10);
  for (const route of ['models', 'count_tokens']) {
    assert.equal(sum(text, 'llmgw_requests_total', { route, status_class: '2xx' })
      - sum(before, 'llmgw_requests_total', { route, status_class: '2xx' }), 1, route);
  }
  assert.equal(sum(text, 'llmgw_requests_total', { status_class: '4xx' }) - base.c4, 4);
  assert.equal(sum(text, 'llmgw_requests_total', { status_class: '5xx' }) - base.c5, 1);
  assert.equal(sum(text, 'llmgw_requests_total', { route: 'chat_completions', model: 'gpt-4o-mini', provider: 'mock', status_class: '2xx' })
    - sum(before, 'llmgw_requests_total', { route: 'chat_completions', model: 'gpt-4o-mini', provider: 'mock', status_class: '2xx' }), 6);
  // The overhead is measured for every call that reached a provider (echo included): 8 answered + 1 failed.
  assert.equal(sum(text, 'llmgw_gateway_overhead_seconds_count') - base.overhead, 9);
  assert.equal(sum(text, 'llmgw_rate_limit_refusals_total') - base.refusals, 1);
  assert.equal(sum(text, 'llmgw_upstream_errors_total') - base.upstream, 1);
  assert.equal(sum(text, 'llmgw_time_to_first_token_seconds_count') - base.ttft, 2);
  assert.ok(sum(text, 'llmgw_tokens_total') > 0);
  assert.ok(sum(text, 'llmgw_cost_usd_total') > 0);
  assert.equal(sum(text, 'llmgw_in_flight_requests'), 0);
  assert.equal(sum(text, 'llmgw_open_streams'), 0);
  // The probes: the spools' depth, the store's health; no Redis configured, no Redis gauge.
  assert.match(text, /^llmgw_usage_buffer_bytes \d+$/m);
  assert.match(text, /^llmgw_audit_buffer_bytes \d+$/m);
  assert.match(text, /^llmgw_database_up 1$/m);
  assert.match(text, /^llmgw_usage_records_dropped_total 0$/m);
  assert.match(text, /^llmgw_audit_records_dropped_total 0$/m);
  assert.doesNotMatch(text, /^llmgw_redis_up/m);
});
