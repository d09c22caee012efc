// Usage records: after SIGTERM (the batch writer flushes), the store (DIR/llmgw.db, or the
// gateway's PostgreSQL schema) holds exactly one row per proxied request, with the token
// counts the upstream reported.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, chat, chatBody, postJson, stream, sseChunks } from './harness.mjs';

const T = { timeout: 30_000 };
let s;
const made = []; // what each proxied request should have produced

before(async () => {
  s = await startStack({ keys: { main: {}, second: {} } });
});

after(async () => {
  await s?.close();
});

const tokens = (p, c, cached = 0, reasoning = 0) =>
  `[mock:prompt_tokens=${p}] [mock:completion_tokens=${c}] [mock:cached_tokens=${cached}] [mock:reasoning_tokens=${reasoning}]`;

test('proxied requests of every kind answer', T, async () => {
  const auth = (name) => ({ authorization: `Bearer ${s.gw.keys[name].key}` });

  let r = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', `json ${tokens(101, 11, 7, 3)}`),
    { headers: { 'x-request-id': 'u-json' } });
  assert.equal(r.status, 200, r.text);
  made.push({ request_id: 'u-json', key: 'main', model: ['gpt-4o-mini'], upstream_model: 'gpt-4o-mini-2024-07-18',
    endpoint: 'chat.completions', status: 200, prompt: 101, completion: 11, cached: 7, reasoning: 3, stream: 0, reported: 1 });

  r = await chat(s.gw.port, s.gw.keys.second.key, chatBody('fast', `alias ${tokens(102, 12)}`),
    { headers: { 'x-request-id': 'u-alias' } });
  assert.equal(r.status, 200, r.text);
  made.push({ request_id: 'u-alias', key: 'second', model: ['gpt-4o-mini', 'fast'], upstream_model: 'gpt-4o-mini-2024-07-18',
    endpoint: 'chat.completions', status: 200, prompt: 102, completion: 12, cached: 0, reasoning: 0, stream: 0, reported: 1 });

  let st = await stream(s.gw.port, { body: chatBody('gpt-4o', `stream ${tokens(103, 13, 5, 2)} [mock:chunks=4]`, { stream: true }),
    headers: { ...auth('main'), 'x-request-id': 'u-stream' } });
  assert.equal(st.status, 200, st.raw);
  assert.ok(st.complete);
  assert.ok(!st.raw.includes('"usage"'), 'the client did not ask for usage');
  made.push({ request_id: 'u-stream', key: 'main', model: ['gpt-4o'], upstream_model: 'gpt-4o',
    endpoint: 'chat.completions', status: 200, prompt: 103, completion: 13, cached: 5, reasoning: 2, stream: 1, reported: 1 });

  st = await stream(s.gw.port, {
    body: chatBody('gpt-4o', `stream usage ${tokens(104, 14)}`, { stream: true, stream_options: { include_usage: true } }),
    headers: { ...auth('main'), 'x-request-id': 'u-stream-usage' } });
  assert.equal(st.status, 200, st.raw);
  made.push({ request_id: 'u-stream-usage', key: 'main', model: ['gpt-4o'], upstream_model: 'gpt-4o',
    endpoint: 'chat.completions', status: 200, prompt: 104, completion: 14, cached: 0, reasoning: 0, stream: 1, reported: 1 });

  st = await stream(s.gw.port, {
    body: chatBody('gpt-4o', `quirk ${tokens(105, 15)} [mock:usage_in_last_choice_chunk]`, { stream: true }),
    headers: { ...auth('main'), 'x-request-id': 'u-stream-quirk' } });
  assert.equal(st.status, 200, st.raw);
  made.push({ request_id: 'u-stream-quirk', key: 'main', model: ['gpt-4o'], upstream_model: 'gpt-4o',
    endpoint: 'chat.completions', status: 200, prompt: 105, completion: 15, cached: 0, reasoning: 0, stream: 1, reported: 1 });

  st = await stream(s.gw.port, { body: chatBody('gpt-4o', 'no usage at all [mock:no_usage]', { stream: true }),
    headers: { ...auth('main'), 'x-request-id': 'u-stream-nousage' } });
  assert.equal(st.status, 200, st.raw);
  made.push({ request_id: 'u-stream-nousage', key: 'main', model: ['gpt-4o'], upstream_model: 'gpt-4o',
    endpoint: 'chat.completions', status: 200, stream: 1, reported: 0 });

  r = await postJson(s.gw.port, s.key, '/v1/embeddings',
    { model: 'text-embedding-3-small', input: ['one', `two [mock:prompt_tokens=106]`] },
    { headers: { 'x-request-id': 'u-embed' } });
  assert.equal(r.status, 200, r.text);
  made.push({ request_id: 'u-embed', key: 'main', model: ['text-embedding-3-small'], upstream_model: 'text-embedding-3-small',
    endpoint: 'embeddings', status: 200, prompt: 106, completion: 0, cached: 0, reasoning: 0, stream: 0, reported: 1 });

  r = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', 'limited [mock:status=429]'),
    { headers: { 'x-request-id': 'u-upstream-429' } });
  assert.equal(r.status, 429, r.text);
  made.push({ request_id: 'u-upstream-429', key: 'main', model: ['gpt-4o-mini'], upstream_model: 'gpt-4o-mini-2024-07-18',
    endpoint: 'chat.completions', status: 429, stream: 0, reported: 0 });

  // Usage-looking text inside the content must not be mistaken for the usage object.
  const decoy = '[mock:reply={"usage":{"prompt_tokens":999,"completion_tokens":999,"total_tokens":1998}}]';
  r = await chat(s.gw.port, s.key, chatBody('gpt-4o', `decoy ${decoy} ${tokens(107, 17)}`),
    { headers: { 'x-request-id': 'u-decoy-json' } });
  assert.equal(r.status, 200, r.text);
  assert.match(r.json.choices[0].message.content, /"usage":\{"prompt_tokens":999/);
  made.push({ request_id: 'u-decoy-json', key: 'main', model: ['gpt-4o'], upstream_model: 'gpt-4o',
    endpoint: 'chat.completions', status: 200, prompt: 107, completion: 17, cached: 0, reasoning: 0, stream: 0, reported: 1 });
  st = await stream(s.gw.port, { body: chatBody('gpt-4o', `decoy ${decoy} ${tokens(108, 18)}`, { stream: true }),
    headers: { ...auth('main'), 'x-request-id': 'u-decoy-stream' } });
  assert.equal(st.status, 200, st.raw);
  made.push({ request_id: 'u-decoy-stream', key: 'main', model: ['gpt-4o'], upstream_model: 'gpt-4o',
    endpoint: 'chat.completions', status: 200, prompt: 108, completion: 18, cached: 0, reasoning: 0, stream: 1, reported: 1 });

  // Refused by the gateway itself: not proxied, so no usage row.
  r = await chat(s.gw.port, 'sk-llmgw-bogus', chatBody('gpt-4o-mini', 'x'), { headers: { 'x-request-id': 'u-401' } });
  assert.equal(r.status, 401);
  r = await chat(s.gw.port, s.key, chatBody('no-such-model', 'x'), { headers: { 'x-request-id': 'u-404' } });
  assert.equal(r.status, 404);
});

test('40 concurrent requests (JSON, streams, embeddings) all answer and are all recorded', T, async () => {
  const jobs = Array.from({ length: 40 }, (_, i) => {
    const rid = `u-conc-${i}`;
    const p = 200 + i;
    if (i % 3 === 0) {
      made.push({ request_id: rid, key: 'main', model: ['gpt-4o'], upstream_model: 'gpt-4o', endpoint: 'chat.completions',
        status: 200, prompt: p, completion: 5, cached: 0, reasoning: 0, stream: 1, reported: 1 });
      return stream(s.gw.port, { body: chatBody('gpt-4o', `c ${tokens(p, 5)} [mock:reply=answer-${i} a b c d] [mock:chunk_delay_ms=20]`, { stream: true }),
        headers: { authorization: `Bearer ${s.key}`, 'x-request-id': rid } })
        .then((x) => [rid, x.status, x.complete, x.status === 200 &&
          sseChunks(x.raw).map((c) => c.choices[0]?.delta?.content ?? '').join(''), `answer-${i} a b c d`]);
    }
    if (i % 3 === 1) {
      made.push({ request_id: rid, key: 'main', model: ['gpt-4o'], upstream_model: 'gpt-4o', endpoint: 'chat.completions',
        status: 200, prompt: p, completion: 6, cached: 0, reasoning: 0, stream: 0, reported: 1 });
      return chat(s.gw.port, s.key, chatBody('gpt-4o', `c ${tokens(p, 6)} [mock:delay_ms=50] [mock:reply=answer-${i}]`),
        { headers: { 'x-request-id': rid } })
        .then((x) => [rid, x.status, true, x.json?.choices?.[0]?.message?.content, `answer-${i}`]);
    }
    made.push({ request_id: rid, key: 'main', model: ['text-embedding-3-small'], upstream_model: 'text-embedding-3-small',
      endpoint: 'embeddings', status: 200, prompt: p, completion: 0, cached: 0, reasoning: 0, stream: 0, reported: 1 });
    return postJson(s.gw.port, s.key, '/v1/embeddings', { model: 'text-embedding-3-small', input: `e [mock:prompt_tokens=${p}]` },
      { headers: { 'x-request-id': rid } }).then((x) => [rid, x.status, true, 'n/a', 'n/a']);
  });
  const results = await Promise.all(jobs);
  const crossed = results.filter(([, , , got, want]) => got !== want);
  assert.deepEqual(crossed.map(([rid, , , got, want]) => `${rid}: got ${JSON.stringify(got)}, want ${want}`), [],
    'each client must get the answer to its own request');
  for (const [rid, status, complete] of results) {
    assert.equal(status, 200, rid);
    assert.ok(complete, `${rid} did not complete`);
  }
});

test('after SIGTERM the database holds one row per proxied request with the upstream token counts', T, async () => {
  const ex = await s.gw.stop();
  assert.deepEqual(ex, { code: 0, signal: null }, `exit after SIGTERM; stderr tail: ${s.gw.stderr.slice(-2000)}`);
  const rows = await s.gw.usageRows();
  const byId = new Map(rows.map((r) => [r.rid, r]));
  assert.deepEqual(rows.map((r) => r.rid).sort(), made.map((m) => m.request_id).sort(),
    `usage rows must match the proxied requests exactly; rows: ${JSON.stringify(rows, null, 1)}`);
  for (const m of made) {
    const row = byId.get(m.request_id);
    const ctx = `${m.request_id}: ${JSON.stringify(row)}`;
    assert.equal(row.key_id, s.gw.keys[m.key].id, ctx);
    assert.ok(m.model.includes(row.model), `model ${row.model} not in ${m.model}; ${ctx}`);
    assert.equal(row.upstream_model, m.upstream_model, ctx);
    assert.equal(row.provider, 'mock', ctx);
    assert.equal(row.endpoint, m.endpoint, ctx);
    assert.equal(row.status, m.status, ctx);
    assert.equal(row.stream, m.stream, ctx);
    assert.equal(row.usage_reported, m.reported, ctx);
    if (m.prompt !== undefined) {
      assert.equal(row.prompt_tokens, m.prompt, ctx);
      assert.equal(row.completion_tokens, m.completion, ctx);
      assert.equal(row.cached_tokens, m.cached, ctx);
      assert.equal(row.reasoning_tokens, m.reasoning, ctx);
    }
    for (const col of ['overhead_us', 'upstream_us', 'created_at_us']) {
      assert.ok(Number.isInteger(row[col]) && row[col] >= 0, `${col}: ${ctx}`);
    }
    assert.ok(row.created_at_us > Date.parse('2024-01-01') * 1000, `created_at_us is in µs since the epoch: ${ctx}`);
    if (m.status === 200) assert.ok(row.upstream_us > 0, `upstream_us of a proxied request: ${ctx}`);
  }
});
