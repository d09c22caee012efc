// Self-test of the mock upstream: it must follow OpenAI's wire format, or every test built on
// it proves nothing. No gateway needed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { OpenAIMock, DEFAULT_REPLY, SYSTEM_FINGERPRINT, parseDirectives, expectedChatStreamTexts, sseBytes } from './openai_mock.mjs';
import { request, stream, sseData, sseChunks, spawnMockProgram } from '../integration/harness.mjs';

const T = { timeout: 20_000 };
let mock;
let auth;

before(async () => {
  mock = new OpenAIMock();
  await mock.start();
  auth = { authorization: `Bearer ${mock.apiKey}` };
});

after(async () => {
  await mock?.stop();
});

const post = (p, body, headers = auth) => request(mock.port, { method: 'POST', path: p, headers, body });
const msg = (content, extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra });

test('chat completion: CreateChatCompletionResponse shape, pretty-printed like OpenAI', T, async () => {
  const r = await post('/v1/chat/completions', msg('hello [mock:created=1700000000]'));
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.match(r.headers['x-request-id'], /^req_[0-9a-f]{32}$/);
  const b = r.json;
  assert.deepEqual(Object.keys(b), ['id', 'object', 'created', 'model', 'choices', 'usage', 'service_tier', 'system_fingerprint']);
  assert.match(b.id, /^chatcmpl-[A-Za-z0-9]{29}$/);
  assert.equal(b.object, 'chat.completion');
  assert.equal(b.created, 1700000000);
  assert.equal(b.model, 'gpt-4o-mini');
  assert.deepEqual(b.choices, [{ index: 0, message: { role: 'assistant', content: DEFAULT_REPLY, refusal: null, annotations: [] },
    logprobs: null, finish_reason: 'stop' }]);
  assert.deepEqual(Object.keys(b.usage), ['prompt_tokens', 'completion_tokens', 'total_tokens', 'prompt_tokens_details', 'completion_tokens_details']);
  assert.equal(b.usage.completion_tokens, 9);
  assert.equal(b.usage.total_tokens, b.usage.prompt_tokens + b.usage.completion_tokens);
  assert.equal(b.system_fingerprint, SYSTEM_FINGERPRINT);
  assert.ok(r.text.startsWith('{\n  "id": '));
  const n2 = await post('/v1/chat/completions', msg('two [mock:chunks=2] [mock:finish_reason=length]', { n: 2 }));
  assert.equal(n2.json.choices.length, 2);
  assert.equal(n2.json.choices[1].index, 1);
  assert.equal(n2.json.choices[1].finish_reason, 'length');
  assert.equal(n2.json.usage.completion_tokens, 4);
});

test('token directives set the reported usage', T, async () => {
  const r = await post('/v1/chat/completions', msg('[mock:prompt_tokens=50] [mock:completion_tokens=8] [mock:cached_tokens=20] [mock:reasoning_tokens=3]'));
  assert.equal(r.json.usage.prompt_tokens, 50);
  assert.equal(r.json.usage.completion_tokens, 8);
  assert.equal(r.json.usage.total_tokens, 58);
  assert.equal(r.json.usage.prompt_tokens_details.cached_tokens, 20);
  assert.equal(r.json.usage.completion_tokens_details.reasoning_tokens, 3);
  const none = await post('/v1/chat/completions', msg('[mock:no_usage]'));
  assert.ok(!('usage' in none.json));
});

test('stream without include_usage: role chunk, content chunks, finish chunk, [DONE]; no usage member', T, async () => {
  const body = msg('s [mock:chunks=3] [mock:created=1700000000]', { stream: true });
  const r = await stream(mock.port, { body, headers: auth });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/event-stream; charset=utf-8');
  assert.ok(r.complete);
  assert.ok(!r.raw.includes('usage'));
  assert.ok(r.raw.endsWith('data: [DONE]\n\n'));
  assert.equal(r.raw, sseBytes(expectedChatStreamTexts(body)));
  const chunks = sseChunks(r.raw);
  assert.equal(chunks.length, 5);
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '', refusal: null });
  assert.deepEqual(chunks.slice(1, 4).map((c) => c.choices[0].delta.content), ['tok0', ' tok1', ' tok2']);
  assert.deepEqual(chunks[4].choices[0], { index: 0, delta: {}, logprobs: null, finish_reason: 'stop' });
  for (const c of chunks) {
    assert.deepEqual(Object.keys(c), ['id', 'object', 'created', 'model', 'service_tier', 'system_fingerprint', 'choices', 'obfuscation']);
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.id, chunks[0].id);
  }
});

test('stream with include_usage: "usage":null on every chunk, then a choices:[] usage chunk', T, async () => {
  const body = msg('s [mock:chunks=2] [mock:created=1700000000]', { stream: true, stream_options: { include_usage: true } });
  const r = await stream(mock.port, { body, headers: auth });
  const chunks = sseChunks(r.raw);
  assert.equal(chunks.length, 5);
  for (const c of chunks.slice(0, -1)) {
    assert.equal(c.usage, null);
    assert.ok(r.raw.includes('"usage":null'));
  }
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 2);
  // Removing the usage members and the usage chunk gives the stream without include_usage.
  const without = await stream(mock.port, { body: msg('s [mock:chunks=2] [mock:created=1700000000]', { stream: true }), headers: auth });
  const stripped = sseData(r.raw).filter((d) => !d.includes('"choices":[]')).map((d) => d.replace(',"usage":null', ''));
  assert.deepEqual(stripped, sseData(without.raw));
});

test('include_obfuscation false drops the obfuscation field; usage_in_last_choice_chunk', T, async () => {
  const r = await stream(mock.port, { body: msg('s [mock:chunks=1]', { stream: true, stream_options: { include_obfuscation: false } }), headers: auth });
  assert.ok(!r.raw.includes('obfuscation'));
  const q = await stream(mock.port, { body: msg('s [mock:chunks=1] [mock:usage_in_last_choice_chunk]',
    { stream: true, stream_options: { include_usage: true } }), headers: auth });
  const chunks = sseChunks(q.raw);
  assert.equal(chunks.length, 3);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  assert.equal(chunks.at(-1).usage.completion_tokens, 1);
});

test('errors: OpenAI shape and status codes', T, async () => {
  const noKey = await post('/v1/chat/completions', msg('x'), {});
  assert.equal(noKey.status, 401);
  const badKey = await post('/v1/chat/completions', msg('x'), { authorization: 'Bearer sk-wrong-key-123456' });
  assert.equal(badKey.status, 401);
  assert.equal(badKey.json.error.code, 'invalid_api_key');
  assert.ok(!badKey.text.includes('sk-wrong-key-123456'), 'the key is masked');
  const unknown = await post('/v1/chat/completions', { ...msg('x'), model: 'gpt-9' });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json.error.code, 'model_not_found');
  const bad = await post('/v1/chat/completions', '{"model":');
  assert.equal(bad.status, 400);
  const missing = await post('/v1/chat/completions', { model: 'gpt-4o-mini' });
  assert.equal(missing.json.error.param, 'messages');
  assert.equal(missing.json.error.code, 'missing_required_parameter');
  const so = await post('/v1/chat/completions', msg('x', { stream_options: { include_usage: true } }));
  assert.equal(so.status, 400, 'stream_options without stream is refused like OpenAI does');
  for (const status of [400, 429, 500, 503]) {
    const r = await post('/v1/chat/completions', msg(`[mock:status=${status}]`));
    assert.equal(r.status, status);
    assert.deepEqual(Object.keys(r.json.error), ['message', 'type', 'param', 'code']);
  }
  const rl = await post('/v1/chat/completions', msg('[mock:status=429]'));
  assert.equal(rl.json.error.code, 'rate_limit_exceeded');
  const se = await post('/v1/chat/completions', msg('[mock:status=500]'));
  assert.equal(se.json.error.type, 'server_error');
  const route = await request(mock.port, { path: '/v1/nope', headers: auth });
  assert.equal(route.status, 404);
  assert.throws(() => parseDirectives('[mock:bogus=1]'));
});

test('embeddings: float and base64 agree; usage', T, async () => {
  const f = await post('/v1/embeddings', { model: 'text-embedding-3-small', input: ['a', 'bb'] });
  assert.equal(f.status, 200);
  assert.deepEqual(Object.keys(f.json), ['object', 'data', 'model', 'usage']);
  assert.equal(f.json.data[0].embedding.length, 1536);
  assert.deepEqual(Object.keys(f.json.data[0]), ['object', 'index', 'embedding']);
  const b = await post('/v1/embeddings', { model: 'text-embedding-3-small', input: ['a', 'bb'], encoding_format: 'base64' });
  const buf = Buffer.from(b.json.data[1].embedding, 'base64');
  assert.deepEqual(Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4)), f.json.data[1].embedding);
  assert.deepEqual(f.json.usage, { prompt_tokens: 2, total_tokens: 2 });
  const tokens = await post('/v1/embeddings', { model: 'text-embedding-3-small', input: [1, 2, 3], dimensions: 2 });
  assert.equal(tokens.json.usage.prompt_tokens, 3);
  assert.equal(tokens.json.data[0].embedding.length, 2);
  const none = await post('/v1/embeddings', { model: 'text-embedding-3-small', input: '' });
  assert.equal(none.status, 400);
});

test('recording, delays, drops and early-close detection', T, async () => {
  mock.clearRequests();
  const raw = '{"model":"gpt-4o-mini", "messages":[{"role":"user","content":"rec"}]}';
  await post('/v1/chat/completions', raw);
  const [rec] = mock.recorded();
  assert.equal(rec.body_text, raw);
  assert.equal(Buffer.from(rec.body_base64, 'base64').toString(), raw);
  assert.equal(rec.headers.authorization, `Bearer ${mock.apiKey}`);
  assert.ok(rec.completed && !rec.closed_early);

  const t0 = Date.now();
  await post('/v1/chat/completions', msg('[mock:delay_ms=300]'));
  assert.ok(Date.now() - t0 >= 290);

  const cut = await stream(mock.port, { body: msg('[mock:chunks=5] [mock:drop_after_chunks=2]', { stream: true }), headers: auth });
  assert.equal(cut.complete, false);
  assert.equal(sseData(cut.raw).length, 2);

  await assert.rejects(post('/v1/chat/completions', msg('[mock:drop]')));

  mock.clearRequests();
  const t1 = Date.now();
  const gone = await stream(mock.port, {
    body: msg('[mock:chunks=50] [mock:chunk_delay_ms=50]', { stream: true }), headers: auth,
    onData: (_d, all, req) => { if (sseData(all).length >= 2) req.destroy(); },
  });
  assert.equal(gone.complete, false);
  const recs = await mock.waitFor((rs) => rs.some((x) => x.closed_early), 2_000, 'early close');
  assert.ok(recs[0].events_sent < 52);
  assert.ok(Date.now() - t1 < 2_000);

  const admin = await request(mock.port, { path: '/__mock/requests' });
  assert.equal(admin.json.length, 1);
  const del = await request(mock.port, { method: 'DELETE', path: '/__mock/requests' });
  assert.equal(del.status, 204);
  assert.equal(mock.recorded().length, 0);
});

test('runnable as a program: node openai_mock.mjs --port 0', T, async () => {
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'openai_mock.mjs');
  const { line, stop } = await spawnMockProgram(file);
  try {
    assert.equal(line.event, 'listening');
    const r = await request(line.port, { method: 'POST', path: '/v1/chat/completions',
      headers: { authorization: `Bearer ${line.api_key}` }, body: msg('cli') });
    assert.equal(r.status, 200);
    const rec = await request(line.port, { path: '/__mock/requests?min=1&timeout_ms=1000' });
    assert.equal(rec.json.length, 1);
  } finally {
    await stop();
  }
});

test('framing directives: split_bytes, coalesce, chunked_json, connection_close, html_error, piece_bytes', T, async () => {
  const base = msg('f [mock:created=1700000000] [mock:chunks=3]', { stream: true });
  const plain = await stream(mock.port, { body: base, headers: auth });
  for (const extra of ['[mock:split_bytes=5]', '[mock:coalesce]']) {
    const body = msg(`f [mock:created=1700000000] [mock:chunks=3] ${extra}`, { stream: true });
    const r = await stream(mock.port, { body, headers: auth });
    assert.ok(r.complete);
    assert.equal(r.raw, sseBytes(expectedChatStreamTexts(body)), extra);
    assert.equal(sseData(r.raw).length, sseData(plain.raw).length, extra);
  }
  const chunked = await post('/v1/chat/completions', msg('c [mock:chunked_json]'));
  assert.equal(chunked.headers['transfer-encoding'], 'chunked');
  assert.equal(chunked.headers['content-length'], undefined);
  assert.equal(chunked.json.object, 'chat.completion');
  const closing = await post('/v1/chat/completions', msg('c [mock:connection_close]'));
  assert.equal(closing.headers.connection, 'close');
  const html = await post('/v1/chat/completions', msg('[mock:status=502] [mock:html_error]'));
  assert.equal(html.status, 502);
  assert.match(html.headers['content-type'], /text\/html/);
  const big = await post('/v1/chat/completions', msg('[mock:chunks=2] [mock:piece_bytes=10]'));
  assert.equal(big.json.choices[0].message.content, 'tok0xxxxxx tok1xxxxx');
});
