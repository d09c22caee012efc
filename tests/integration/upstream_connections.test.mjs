// The gateway's upstream connections: chunked JSON answers, an upstream that closes its
// connections (Connection: close, or its keep-alive timeout), connection reuse.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { OpenAIMock, startGateway, standardConfig, chat, chatBody, postJson, stream, sseData, sleep } from './harness.mjs';

const T = { timeout: 30_000 };
const MOCK_KEEP_ALIVE_MS = 300;
let mock;
let gw;
let key;

before(async () => {
  mock = new OpenAIMock({ keepAliveTimeoutMs: MOCK_KEEP_ALIVE_MS });
  await mock.start();
  gw = await startGateway({ config: standardConfig(mock.baseUrl), keys: { main: {} }, mockKey: mock.apiKey });
  key = gw.keys.main.key;
});

after(async () => {
  await gw?.cleanup();
  await mock?.stop();
});

test('a chunked JSON answer is passed through and its usage recorded', T, async () => {
  const res = await chat(gw.port, key, chatBody('gpt-4o-mini', 'chunked [mock:chunked_json] [mock:prompt_tokens=31]'),
    { headers: { 'x-request-id': 'conn-chunked' } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.usage.prompt_tokens, 31);
  const emb = await postJson(gw.port, key, '/v1/embeddings',
    { model: 'text-embedding-3-small', input: 'x [mock:chunked_json]', dimensions: 3 });
  assert.equal(emb.status, 200, emb.text);
  assert.equal(emb.json.data[0].embedding.length, 3);
});

test('an upstream answering Connection: close does not break the next requests', T, async () => {
  for (let i = 0; i < 4; i++) {
    const res = await chat(gw.port, key, chatBody('gpt-4o-mini', `close ${i} [mock:connection_close]`));
    assert.equal(res.status, 200, `request ${i}: ${res.text}`);
  }
  const st = await stream(gw.port, { body: chatBody('gpt-4o-mini', 'close stream [mock:connection_close] [mock:chunks=2]',
    { stream: true }), headers: { authorization: `Bearer ${key}` } });
  assert.equal(st.status, 200);
  assert.equal(sseData(st.raw).at(-1), '[DONE]');
  const after = await chat(gw.port, key, chatBody('gpt-4o-mini', 'after close'));
  assert.equal(after.status, 200, after.text);
});

test('pooled connections the upstream closed while idle are not reused into an error', T, async () => {
  // Warm several pooled connections, let the upstream's keep-alive timeout close them all,
  // then use them again: every request must still succeed (no spurious 502).
  const warm = await Promise.all(Array.from({ length: 4 }, (_, i) =>
    chat(gw.port, key, chatBody('gpt-4o-mini', `warm ${i} [mock:delay_ms=50]`))));
  for (const r of warm) assert.equal(r.status, 200, r.text);
  for (let round = 0; round < 2; round++) {
    await sleep(MOCK_KEEP_ALIVE_MS + 400);
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) =>
      chat(gw.port, key, chatBody('gpt-4o-mini', `again ${round}.${i}`))));
    results.forEach((r, i) => assert.equal(r.status, 200, `round ${round}, request ${i}: ${r.status} ${r.text}`));
    const st = await stream(gw.port, { body: chatBody('gpt-4o-mini', `again stream ${round} [mock:chunks=2]`, { stream: true }),
      headers: { authorization: `Bearer ${key}` } });
    assert.equal(st.status, 200, st.raw);
  }
});

test('sequential requests reuse upstream connections (keep-alive)', T, async () => {
  mock.clearRequests();
  for (let i = 0; i < 10; i++) {
    const r = await chat(gw.port, key, chatBody('gpt-4o-mini', `reuse ${i}`));
    assert.equal(r.status, 200);
  }
  const sockets = mock.connectionsSeen();
  assert.ok(sockets <= 3, `10 sequential requests used ${sockets} upstream connections`);
});

test('after SIGTERM the chunked answer has its usage row', T, async () => {
  const ex = await gw.stop();
  assert.deepEqual(ex, { code: 0, signal: null });
  const rows = await gw.usageFor('conn-chunked');
  assert.equal(rows.length, 1);
  assert.equal(rows[0].prompt_tokens, 31);
  assert.equal(rows[0].usage_reported, 1);
});
