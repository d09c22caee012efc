// Upstream failures: first-byte timeout (504), connection refused (502), connection reset
// before an answer (502), a stream cut mid-way, and a client that goes away mid-stream (the
// gateway must close the upstream connection). The gateway stays up and records usage rows.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  OpenAIMock, startGateway, standardConfig, freePort, chat, chatBody, request, stream, sseData,
  assertOpenAIError,
} from './harness.mjs';
import { expectedChatStreamTexts } from '../mock/openai_mock.mjs';

const T = { timeout: 30_000 };
const FIRST_BYTE_TIMEOUT_MS = 700;
const IDLE_TIMEOUT_MS = 800;
let mock;
let gw;
let key;
const streamIds = {}; // label → x-request-id, checked against usage rows at the end

before(async () => {
  mock = new OpenAIMock();
  await mock.start();
  const deadPort = await freePort(); // nothing listens there
  const config = standardConfig(mock.baseUrl, { first_byte_timeout_ms: FIRST_BYTE_TIMEOUT_MS,
    idle_timeout_ms: IDLE_TIMEOUT_MS });
  config.providers.push({ name: 'dead', type: 'openai', base_url: `http://127.0.0.1:${deadPort}/v1`,
    api_key: 'sk-dead', connect_timeout_ms: 2000 });
  config.models.push({ name: 'dead-model', provider: 'dead' });
  gw = await startGateway({ config, keys: { main: {} }, mockKey: mock.apiKey });
  key = gw.keys.main.key;
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

async function assertAlive() {
  const h = await request(gw.port, { path: '/healthz', timeoutMs: 3_000 });
  assert.equal(h.status, 200, 'the gateway must stay up');
  const r = await chat(gw.port, key, chatBody('gpt-4o-mini', 'still there?'));
  assert.equal(r.status, 200, `a normal request after the failure: ${r.text}`);
}

test('an upstream slower than first_byte_timeout_ms gives 504 timeout_error in time', T, async () => {
  const t0 = Date.now();
  const res = await chat(gw.port, key, chatBody('gpt-4o-mini', 'slow [mock:delay_ms=4000]'),
    { headers: { 'x-request-id': 'fbt-json' } });
  const took = Date.now() - t0;
  assertOpenAIError(assert, res, 504, 'timeout_error');
  assert.ok(took >= FIRST_BYTE_TIMEOUT_MS - 50, `answered after ${took} ms, before the timeout`);
  assert.ok(took < FIRST_BYTE_TIMEOUT_MS + 1500, `answered after ${took} ms (timeout ${FIRST_BYTE_TIMEOUT_MS})`);

  const t1 = Date.now();
  const st = await stream(gw.port, { body: chatBody('gpt-4o-mini', 'slow [mock:delay_ms=4000]', { stream: true }),
    headers: { authorization: `Bearer ${key}` } });
  assert.equal(st.status, 504, `streaming request: ${st.raw}`);
  assert.equal(JSON.parse(st.raw).error.type, 'timeout_error');
  assert.ok(Date.now() - t1 < FIRST_BYTE_TIMEOUT_MS + 1500);
  await assertAlive();
});

test('connection refused upstream gives 502 upstream_error', T, async () => {
  const res = await chat(gw.port, key, chatBody('dead-model', 'anyone?'));
  assertOpenAIError(assert, res, 502, 'upstream_error');
  assert.ok(!res.text.includes('sk-dead'), 'the provider key must not appear in the error');
  await assertAlive();
});

test('an upstream that drops the connection before answering gives 502', T, async () => {
  const res = await chat(gw.port, key, chatBody('gpt-4o-mini', 'vanish [mock:drop]'));
  assertOpenAIError(assert, res, 502, 'upstream_error');
  await assertAlive();
});

test('a stream cut mid-way upstream: the client gets the chunks so far, then the stream ends', T, async () => {
  mock.clearRequests();
  const text = 'cut [mock:created=1700000100] [mock:chunks=10] [mock:drop_after_chunks=3]';
  const body = chatBody('gpt-4o-mini', text, { stream: true });
  const t0 = Date.now();
  const r = await stream(gw.port, { body,
    headers: { authorization: `Bearer ${key}`, 'x-request-id': 'cut-stream-1' }, timeoutMs: 10_000 });
  streamIds.cut = 'cut-stream-1';
  assert.equal(r.status, 200);
  assert.ok(!r.timedOut, 'the client stream must end when the upstream connection drops');
  assert.ok(Date.now() - t0 < 5_000);
  const expected = expectedChatStreamTexts({ ...body, model: 'gpt-4o-mini-2024-07-18' }).slice(0, 3);
  const got = sseData(r.raw);
  assert.deepEqual(got.slice(0, 3), expected, 'the three chunks sent before the cut, as OpenAI sends them');
  for (const e of got.slice(3)) assert.ok(JSON.parse(e).error, `after the cut only an error event may follow: ${e}`);
  assert.ok(got.length <= 4, r.raw);
  assert.ok(!r.raw.includes('[DONE]'), 'a cut stream must not look complete ([DONE] forwarded or invented)');
  await assertAlive();
});

test('an upstream stream that stalls longer than idle_timeout_ms is ended, not left hanging', T, async () => {
  mock.clearRequests();
  const t0 = Date.now();
  const r = await stream(gw.port, {
    body: chatBody('gpt-4o-mini', 'stall [mock:chunks=4] [mock:chunk_delay_ms=3000]', { stream: true }),
    headers: { authorization: `Bearer ${key}`, 'x-request-id': 'stall-1' }, timeoutMs: 8_000 });
  streamIds.stall = 'stall-1';
  const took = Date.now() - t0;
  assert.equal(r.status, 200);
  assert.ok(!r.timedOut, 'the client stream was left hanging');
  assert.ok(took < IDLE_TIMEOUT_MS + 2_000, `the stalled stream ended after ${took} ms (idle timeout ${IDLE_TIMEOUT_MS} ms)`);
  const events = sseData(r.raw);
  assert.equal(JSON.parse(events[0]).choices[0].delta.role, 'assistant', 'the event sent before the stall');
  // After it, at most an OpenAI-style error event; never more content and never [DONE].
  for (const e of events.slice(1)) {
    assert.ok(JSON.parse(e).error, `after the stall only an error event may follow: ${e}`);
  }
  assert.ok(events.length <= 2, r.raw);
  assert.ok(!r.raw.includes('[DONE]'));
  await mock.waitFor((rs) => rs.some((x) => x.closed_early), 2_000, 'the stalled upstream connection to be closed');
  await assertAlive();
});

test('a client that disconnects mid-stream makes the gateway close the upstream connection', T, async () => {
  mock.clearRequests();
  let disconnectedAt = 0;
  const r = await stream(gw.port, {
    body: chatBody('gpt-4o-mini', 'long [mock:chunks=60] [mock:chunk_delay_ms=100]', { stream: true }),
    headers: { authorization: `Bearer ${key}`, 'x-request-id': 'client-gone-1' },
    onData: (_d, all, req) => {
      if (!disconnectedAt && sseData(all).length >= 2) {
        disconnectedAt = Date.now();
        req.destroy();
      }
    },
  });
  streamIds.clientGone = 'client-gone-1';
  assert.ok(disconnectedAt > 0, `client never saw two events: ${r.raw}`);
  const recs = await mock.waitFor((rs) => rs.some((x) => x.closed_early), 2_000,
    'the upstream connection to be closed after the client left');
  const rec = recs.find((x) => x.closed_early);
  assert.ok(rec.events_sent < 63, `the upstream stream ran to completion (${rec.events_sent} events)`);
  assert.ok(rec.closed_at_ms - disconnectedAt < 2_000, `upstream closed ${rec.closed_at_ms - disconnectedAt} ms after the client left`);
  await assertAlive();
});

test('after SIGTERM, usage rows exist for the failed and interrupted streams', T, async () => {
  const ex = await gw.stop();
  assert.deepEqual(ex, { code: 0, signal: null }, `exit after SIGTERM; stderr tail: ${gw.stderr.slice(-2000)}`);
  for (const [label, rid] of Object.entries(streamIds)) {
    const rows = await gw.usageFor(rid);
    assert.equal(rows.length, 1, `${label}: expected one usage row for ${rid}, got ${JSON.stringify(rows)}`);
    assert.equal(rows[0].stream, 1, `${label}: stream flag`);
  }
  const fbt = await gw.usageFor('fbt-json');
  assert.equal(fbt.length, 1, 'the timed-out request is a proxied request and gets its row');
  assert.equal(fbt[0].status, 504);
});

