// Forwarding through the gateway to the mock upstream: JSON and SSE chat, the include_usage
// rewrite (byte-identical client stream), model/alias rewrite, provider key, pass-through of
// upstream errors, x-request-id, embeddings, access log.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  startStack, chat, chatBody, postJson, request, stream, sseData, sseChunks, assertOpenAIError,
  requestIdOf, connect, rawRequest, waitUntil, sleep,
} from './harness.mjs';
import { statusError, embeddingVector } from '../mock/openai_mock.mjs';

const T = { timeout: 30_000 };
let s; // {mock, gw, key}

before(async () => {
  s = await startStack({ keys: { main: {} } });
});

after(async () => {
  await s?.close();
});

/** Raw SSE text the mock sends for `body` sent straight to it (no gateway). */
async function directFromMock(body) {
  const r = await stream(s.mock.port, {
    body,
    headers: { authorization: `Bearer ${s.mock.apiKey}` },
  });
  assert.equal(r.status, 200, `direct mock call failed: ${r.raw}`);
  assert.ok(r.complete, 'direct mock stream did not complete');
  return r.raw;
}

function lastRecorded() {
  const rs = s.mock.recorded().filter((r) => !r.path.startsWith('/__mock'));
  assert.ok(rs.length > 0, 'the mock received no request');
  return rs[rs.length - 1];
}

test('JSON chat is proxied and the upstream answer passed through', T, async () => {
  s.mock.clearRequests();
  const res = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', 'Hello there [mock:created=1700000001]'));
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers['content-type'], /application\/json/);
  const b = res.json;
  assert.equal(b.object, 'chat.completion');
  assert.match(b.id, /^chatcmpl-/);
  assert.equal(b.created, 1700000001);
  assert.equal(b.model, 'gpt-4o-mini-2024-07-18', 'the upstream model name comes back as OpenAI sends it');
  assert.equal(b.choices.length, 1);
  assert.deepEqual(b.choices[0].message, { role: 'assistant', content: 'Hello! How can I help you today?',
    refusal: null, annotations: [] });
  assert.equal(b.choices[0].finish_reason, 'stop');
  assert.equal(b.usage.completion_tokens, 9);
  assert.equal(b.usage.total_tokens, b.usage.prompt_tokens + 9);
  // The body is the upstream's bytes (pretty-printed by OpenAI and the mock), not re-serialised.
  const rec = lastRecorded();
  assert.equal(rec.status, 200);
  assert.ok(res.text.includes('\n  "object": "chat.completion",\n'),
    `expected the upstream's pretty-printed body untouched, got: ${res.text.slice(0, 200)}`);
});

test('SSE without include_usage: client bytes equal what OpenAI sends without include_usage', T, async () => {
  s.mock.clearRequests();
  const body = chatBody('gpt-4o-mini', 'Count please [mock:created=1700000002] [mock:chunks=6]', { stream: true });
  const r = await stream(s.gw.port, { body, headers: { authorization: `Bearer ${s.key}` } });
  assert.equal(r.status, 200, r.raw);
  assert.match(r.headers['content-type'], /^text\/event-stream/);
  assert.ok(r.complete, `stream did not end cleanly: ${r.error}`);

  // What the gateway sent upstream: the client's request plus include_usage.
  const fwd = JSON.parse(lastRecorded().body_text);
  assert.deepEqual(fwd.stream_options, { include_usage: true },
    'the gateway must ask the upstream for usage when the client did not');

  const expected = await directFromMock({ ...body, model: 'gpt-4o-mini-2024-07-18' });
  assert.ok(!expected.includes('"usage"'), 'sanity: the mock sends no usage without include_usage');
  assert.equal(r.raw, expected, 'client stream differs from what OpenAI would have sent');
});

for (const [label, directive] of [['split into 7-byte writes', '[mock:split_bytes=7]'],
  ['split into 1-byte writes', '[mock:split_bytes=1] [mock:chunks=2]'], ['coalesced into one write', '[mock:coalesce]']]) {
  test(`SSE ${label} upstream: the client still gets OpenAI's exact bytes`, T, async () => {
    const body = chatBody('gpt-4o-mini', `Framing [mock:created=1700000010] ${directive}`, { stream: true });
    const r = await stream(s.gw.port, { body, headers: { authorization: `Bearer ${s.key}` } });
    assert.equal(r.status, 200, r.raw);
    assert.ok(r.complete, `stream did not end cleanly: ${r.error}`);
    const expected = await directFromMock({ ...body, model: 'gpt-4o-mini-2024-07-18' });
    assert.equal(r.raw, expected);
  });
}

test('SSE with include_usage false: the client sees no usage either', T, async () => {
  const body = chatBody('gpt-4o-mini', 'No usage [mock:created=1700000003] [mock:chunks=3]',
    { stream: true, stream_options: { include_usage: false } });
  const r = await stream(s.gw.port, { body, headers: { authorization: `Bearer ${s.key}` } });
  assert.equal(r.status, 200, r.raw);
  assert.ok(r.complete);
  const expected = await directFromMock({ ...body, model: 'gpt-4o-mini-2024-07-18' });
  assert.equal(r.raw, expected);
});

test('SSE with include_usage: the usage chunk is delivered, and the forwarded body is untouched', T, async () => {
  s.mock.clearRequests();
  const text = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"With usage [mock:created=1700000004] [mock:chunks=4] [mock:prompt_tokens=21]"}],"stream":true,"stream_options":{"include_usage":true}}';
  const r = await stream(s.gw.port, { body: text, headers: { authorization: `Bearer ${s.key}` } });
  assert.equal(r.status, 200, r.raw);
  assert.ok(r.complete);
  assert.equal(lastRecorded().body_text,
    text.replace('"model":"gpt-4o-mini"', '"model":"gpt-4o-mini-2024-07-18"'),
    'the client already asked for usage: only the model may change');
  const expected = await directFromMock({ ...JSON.parse(text), model: 'gpt-4o-mini-2024-07-18' });
  assert.equal(r.raw, expected);
  const chunks = sseChunks(r.raw);
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.prompt_tokens, 21);
  assert.equal(last.usage.completion_tokens, 4);
  for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null, 'other chunks carry "usage":null');
  assert.equal(sseData(r.raw).at(-1), '[DONE]');
});

test('usage attached to the last choice chunk (OpenAI-compatible servers) is passed on', T, async () => {
  const body = chatBody('gpt-4o-mini', 'Quirk [mock:created=1700000005] [mock:chunks=2] [mock:usage_in_last_choice_chunk]',
    { stream: true });
  const r = await stream(s.gw.port, { body, headers: { authorization: `Bearer ${s.key}` } });
  assert.equal(r.status, 200, r.raw);
  assert.ok(r.complete);
  const chunks = sseChunks(r.raw);
  assert.ok(chunks.length >= 4, r.raw);
  const content = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(content, 'tok0 tok1');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  assert.equal(sseData(r.raw).at(-1), '[DONE]');
});

test('concurrent streams: each client gets its own exact bytes, each forwarded body is intact', T, async () => {
  s.mock.clearRequests();
  const bodies = Array.from({ length: 32 }, (_, i) => chatBody(i % 2 ? 'gpt-4o-mini' : 'fast',
    `concurrent ${i} [mock:created=1700000020] [mock:chunks=5] [mock:chunk_delay_ms=20]`,
    i % 4 === 3 ? { stream: true, stream_options: { include_usage: true } } : { stream: true }));
  const results = await Promise.all(bodies.map((body) => stream(s.gw.port, { body,
    headers: { authorization: `Bearer ${s.key}` } })));
  const recs = s.mock.recorded();
  assert.equal(recs.length, bodies.length);
  const corrupt = recs.filter((r) => { try { JSON.parse(r.body_text); return false; } catch { return true; } });
  assert.equal(corrupt.length, 0, `${corrupt.length} of ${recs.length} forwarded bodies are not the client's JSON; ` +
    `first: ${JSON.stringify(corrupt[0]?.body_text.slice(0, 200))}`);
  for (let i = 0; i < bodies.length; i++) {
    assert.equal(results[i].status, 200, `stream ${i}: ${results[i].raw.slice(0, 300)}`);
    const expected = await directFromMock({ ...bodies[i], model: 'gpt-4o-mini-2024-07-18' });
    assert.equal(results[i].raw, expected, `stream ${i} differs`);
  }
});

test('alias and upstream_model are rewritten; the rest of the body is byte-identical', T, async () => {
  s.mock.clearRequests();
  // Unusual but valid formatting, unknown fields and escapes must survive untouched.
  const text = '{ "temperature" : 0.50, "model" : "fast",\n  "messages" : [ {"role":"system","content":"Be \\u00e9l\\u00e8gant \\"quoted\\" \u2603"},' +
    ' {"role":"user","content":"Hi [mock:created=1700000006]"} ],\n  "x_vendor_field": {"nested": [1, 2.0e0, null, true]}, "user" : "u-1" }';
  const res = await chat(s.gw.port, s.key, text);
  assert.equal(res.status, 200, res.text);
  const rec = lastRecorded();
  assert.equal(rec.path, '/v1/chat/completions');
  const expected = text.replace('"model" : "fast"', '"model" : "gpt-4o-mini-2024-07-18"');
  assert.equal(rec.body_text, expected, 'forwarded body must be the client body with only model rewritten');
  assert.equal(res.json.model, 'gpt-4o-mini-2024-07-18');

  s.mock.clearRequests();
  const res2 = await chat(s.gw.port, s.key, chatBody('gpt-4o', 'no upstream_model'));
  assert.equal(res2.status, 200, res2.text);
  assert.equal(JSON.parse(lastRecorded().body_text).model, 'gpt-4o', 'upstream_model defaults to the name');
});

test('only the top-level model is rewritten; decoys elsewhere stay byte-identical', T, async () => {
  s.mock.clearRequests();
  const text = '{"metadata":{"model":"fast"},"messages":[{"role":"user","content":"say \\"model\\":\\"fast\\" [mock:chunks=1]","name":"model"}],' +
    '"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"model":{"type":"string","enum":["fast"]}}}}}],' +
    '"model":"fast"}';
  JSON.parse(text); // the test body itself must be valid JSON
  const res = await chat(s.gw.port, s.key, text);
  assert.equal(res.status, 200, res.text);
  const fwd = lastRecorded().body_text;
  const expected = text.slice(0, text.lastIndexOf('"model":"fast"')) + '"model":"gpt-4o-mini-2024-07-18"}';
  assert.equal(fwd, expected);
});

test('a model name written with JSON escapes is understood like any JSON parser would', T, async () => {
  s.mock.clearRequests();
  const res = await chat(s.gw.port, s.key, '{"model":"f\\u0061st","messages":[{"role":"user","content":"escaped [mock:chunks=1]"}]}');
  assert.equal(res.status, 200, `"f\\u0061st" is "fast": ${res.text}`);
  assert.equal(JSON.parse(lastRecorded().body_text).model, 'gpt-4o-mini-2024-07-18');
});

test('stream_options is the only addition to a streaming body', T, async () => {
  s.mock.clearRequests();
  const text = '{"model":"fast","stream":true,"messages":[{"role":"user","content":"S [mock:chunks=1]"}],"seed":7}';
  const r = await stream(s.gw.port, { body: text, headers: { authorization: `Bearer ${s.key}` } });
  assert.equal(r.status, 200, r.raw);
  const fwd = lastRecorded().body_text;
  const base = text.replace('"model":"fast"', '"model":"gpt-4o-mini-2024-07-18"');
  const so = '"stream_options":{"include_usage":true}';
  const candidates = [fwd.replace(`,${so}`, ''), fwd.replace(`${so},`, ''),
    fwd.replace(/\s*,\s*"stream_options"\s*:\s*\{\s*"include_usage"\s*:\s*true\s*\}/, ''),
    fwd.replace(/"stream_options"\s*:\s*\{\s*"include_usage"\s*:\s*true\s*\}\s*,\s*/, '')];
  assert.ok(candidates.includes(base),
    `forwarded body must be the client body + stream_options only.\n client: ${text}\n forwarded: ${fwd}`);
});

test('the provider key replaces the client key; the gateway key is never forwarded', T, async () => {
  for (const headers of [{ authorization: `Bearer ${s.key}` }, { 'api-key': s.key }]) {
    s.mock.clearRequests();
    const res = await postJson(s.gw.port, undefined, '/v1/chat/completions', chatBody('gpt-4o-mini', 'key check'),
      { headers });
    assert.equal(res.status, 200, res.text);
    const rec = lastRecorded();
    assert.equal(rec.headers.authorization, `Bearer ${s.mock.apiKey}`);
    const everything = JSON.stringify(rec.raw_headers) + rec.body_text;
    assert.ok(!everything.includes(s.key), `the gateway key leaked upstream: ${JSON.stringify(rec.raw_headers)}`);
    assert.ok(!('api-key' in rec.headers), 'the client api-key header must not be forwarded');
  }
});

for (const status of [400, 404, 409, 422, 429, 500, 502, 503]) {
  test(`upstream ${status} is passed through with the provider's body`, T, async () => {
    const res = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', `fail [mock:status=${status}]`));
    assert.equal(res.status, status, res.text);
    assert.equal(res.text, JSON.stringify(statusError(status, 'gpt-4o-mini-2024-07-18'), null, 2) + '\n');
    assert.match(res.headers['content-type'], /application\/json/);
  });
}

for (const status of [401, 403]) {
  test(`upstream ${status} (the provider refused the gateway's credential) becomes 502 upstream_error`, T, async () => {
    const res = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', `fail [mock:status=${status}]`));
    assertOpenAIError(assert, res, 502, 'upstream_error');
    assert.ok(!res.text.includes('sk-mock') && !res.text.includes('cdef'),
      `the provider credential (even masked) must not reach the client: ${res.text}`);
  });
}

test('an upstream error that is not JSON (a proxy HTML page) reaches the client in OpenAI shape', T, async () => {
  const res = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', 'fail [mock:status=502] [mock:html_error]'));
  assertOpenAIError(assert, res, 502);
  assert.ok(!res.text.includes('<html'), res.text);
});

test('upstream 429 on a streaming request reaches the client as 429 JSON', T, async () => {
  const r = await stream(s.gw.port, { body: chatBody('gpt-4o-mini', 'x [mock:status=429]', { stream: true }),
    headers: { authorization: `Bearer ${s.key}` } });
  assert.equal(r.status, 429, r.raw);
  assert.equal(JSON.parse(r.raw).error.code, 'rate_limit_exceeded');
});

test('x-request-id is echoed when given and generated otherwise, on every response', T, async () => {
  const given = 'client-req-4f7c2a';
  const a = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', 'rid'), { headers: { 'x-request-id': given } });
  assert.equal(a.status, 200, a.text);
  assert.equal(requestIdOf(assert, a), given);

  const b = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', 'rid'));
  const c = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', 'rid'));
  const idB = requestIdOf(assert, b);
  const idC = requestIdOf(assert, c);
  assert.ok(idB.length >= 8, `generated id too short: ${idB}`);
  assert.notEqual(idB, idC, 'generated ids must be unique');
  assert.notEqual(idC, lastRecorded().response_request_id, 'the upstream x-request-id must not replace the gateway one');

  const st = await stream(s.gw.port, { body: chatBody('gpt-4o-mini', 'rid [mock:chunks=1]', { stream: true }),
    headers: { authorization: `Bearer ${s.key}`, 'x-request-id': 'stream-rid-1' } });
  assert.equal(requestIdOf(assert, st), 'stream-rid-1');

  const unauth = await chat(s.gw.port, 'sk-llmgw-nope', chatBody('gpt-4o-mini', 'x'), { headers: { 'x-request-id': 'err-rid-1' } });
  assert.equal(unauth.status, 401);
  assert.equal(requestIdOf(assert, unauth), 'err-rid-1');
  const missing = await chat(s.gw.port, s.key, chatBody('no-such-model', 'x'));
  assert.equal(missing.status, 404);
  requestIdOf(assert, missing);
  const health = await request(s.gw.port, { path: '/healthz' });
  assert.equal(health.status, 200);
  requestIdOf(assert, health);
});

test('embeddings are proxied untouched (float and base64) with usage', T, async () => {
  s.mock.clearRequests();
  const text = '{"input":["alpha","beta [mock:prompt_tokens=13]"],"model":"text-embedding-3-small","dimensions":4}';
  const res = await postJson(s.gw.port, s.key, '/v1/embeddings', text);
  assert.equal(res.status, 200, res.text);
  assert.equal(lastRecorded().path, '/v1/embeddings');
  assert.equal(lastRecorded().body_text, text);
  assert.equal(res.json.object, 'list');
  assert.equal(res.json.data.length, 2);
  assert.deepEqual(res.json.data[0].embedding, Array.from(embeddingVector('text-embedding-3-small', 'alpha', 4)));
  assert.deepEqual(res.json.usage, { prompt_tokens: 13, total_tokens: 13 });

  const b64 = await postJson(s.gw.port, s.key, '/v1/embeddings',
    { model: 'text-embedding-3-small', input: 'alpha', dimensions: 4, encoding_format: 'base64' });
  assert.equal(b64.status, 200, b64.text);
  const buf = Buffer.from(b64.json.data[0].embedding, 'base64');
  assert.deepEqual(Array.from(new Float32Array(buf.buffer, buf.byteOffset, 4)),
    Array.from(embeddingVector('text-embedding-3-small', 'alpha', 4)));
});

test('/v1/models lists every model and alias for an unrestricted key', T, async () => {
  const res = await request(s.gw.port, { path: '/v1/models', headers: { authorization: `Bearer ${s.key}` } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.object, 'list');
  const ids = res.json.data.map((m) => m.id).sort();
  assert.deepEqual(ids, ['echo-chat', 'echo-embed', 'fast', 'gpt-4o', 'gpt-4o-mini', 'quick-echo',
    'text-embedding-3-small'].sort());
  for (const m of res.json.data) {
    assert.equal(m.object, 'model');
    assert.ok(Number.isInteger(m.created), `created must be an integer: ${JSON.stringify(m)}`);
    assert.equal(typeof m.owned_by, 'string');
  }
});

test('access log: one JSON line per request with the documented fields, no secrets or bodies', T, async () => {
  const marker = 'SECRET-BODY-MARKER-93412';
  const rid = 'access-log-rid-1';
  const res = await chat(s.gw.port, s.key, chatBody('fast', marker), { headers: { 'x-request-id': rid } });
  assert.equal(res.status, 200, res.text);
  const line = await s.gw.waitForAccessLog(rid);
  assert.equal(line.method, 'POST');
  assert.equal(line.path, '/v1/chat/completions');
  assert.equal(line.status, 200);
  assert.equal(line.key_id, s.gw.keys.main.id);
  assert.ok(line.model === 'fast' || line.model === 'gpt-4o-mini', `model: ${line.model}`);
  assert.ok(Number.isInteger(line.duration_us) && line.duration_us > 0, `duration_us: ${line.duration_us}`);
  assert.ok(Number.isInteger(line.upstream_us) && line.upstream_us >= 0, `upstream_us: ${line.upstream_us}`);
  assert.ok(line.duration_us >= line.upstream_us, 'duration includes the upstream time');
  const stderr = s.gw.stderr;
  assert.ok(!stderr.includes(marker), 'a request body reached the log');
  assert.ok(!stderr.includes(s.key), 'the gateway key reached the log');
  assert.ok(!stderr.includes(s.mock.apiKey), 'the provider key reached the log');
  assert.deepEqual(s.gw.nonJsonStderrLines(), [], 'every stderr line must be a JSON object');
});

test('back-pressure: a client that stops reading stops the gateway reading from upstream', { timeout: 60_000 }, async () => {
  s.mock.clearRequests();
  const chunks = 4096;
  const piece = 16_384; // 64 MiB of content: far more than all the socket buffers on the way
  const sock = await connect(s.gw.port);
  sock.on('error', () => {});
  sock.write(rawRequest({ headers: { authorization: `Bearer ${s.key}` },
    body: chatBody('gpt-4o-mini', `big [mock:chunks=${chunks}] [mock:piece_bytes=${piece}]`, { stream: true }) }));
  let received = 0;
  let ended = false;
  sock.on('data', (d) => { received += d.length; });
  sock.on('end', () => { ended = true; });
  await waitUntil(() => received > 0, 5_000, 'the first bytes of the stream');
  sock.pause();
  // Let every buffer on the way fill, then check that the upstream is held back.
  await waitUntil(() => s.mock.recorded()[0]?.events_sent > 0, 5_000, 'the upstream to start streaming');
  let last = -1;
  await waitUntil(async () => {
    const now = s.mock.recorded()[0].events_sent;
    const stable = now === last;
    last = now;
    await sleep(300);
    return stable;
  }, 10_000, 'the upstream writes to stall');
  const total = chunks + 3; // role chunk, content chunks, finish chunk, [DONE]
  const sent = s.mock.recorded()[0].events_sent;
  if (process.env.LLMGW_TEST_VERBOSE) console.log(`back-pressure: upstream wrote ${sent} of ${total} events`);
  assert.ok(sent < total * 0.75, `the upstream could write ${sent} of ${total} events while the client read nothing: ` +
    'the gateway buffers instead of applying back-pressure');
  sock.resume();
  await waitUntil(() => ended || s.mock.recorded()[0].completed, 30_000, 'the stream to finish after the client resumed');
  await waitUntil(() => ended || received > chunks * piece, 30_000, 'the whole stream to reach the client');
  sock.destroy();
  assert.ok(received > chunks * piece, `client received ${received} bytes`);
});
