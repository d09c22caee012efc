// Hostile and broken clients, each answered with the right status while the process stays
// up: malformed JSON, wrong types, missing fields, invalid UTF-8, an 11 MiB body, headers one
// byte a second, pipelining, mid-stream disconnects, and 1,000 connections opened and dropped
// (the open file descriptors return to their baseline).

import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import {
  startStack, chat, chatBody, postJson, request, rawExchange, rawRequest, parseHttpResponses,
  assertOpenAIError, connect, sleep, within, waitUntil, sseData,
} from './harness.mjs';

const T = { timeout: 30_000 };
const HEADER_TIMEOUT_MS = 1_500;
const IDLE_TIMEOUT_MS = 2_500;
const MAX_BODY = 10 * 1024 * 1024;
let s;

before(async () => {
  s = await startStack({ env: { LLMGW_HEADER_TIMEOUT_MS: String(HEADER_TIMEOUT_MS),
    LLMGW_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS) } });
});

after(async () => {
  await s?.close();
});

beforeEach(() => {
  assert.ok(s, 'the stack did not start');
  assert.equal(s.gw.exit, null, `the gateway is no longer running (it died during an earlier test): ` +
    `${JSON.stringify(s.gw.exit)}\n${s.gw.stderr.slice(-3000)}`);
});

afterEach(async () => {
  // Whatever the test did, the process must be alive and answering.
  if (!s) return;
  assert.equal(s.gw.exit, null, `the gateway died: ${JSON.stringify(s.gw.exit)}\n${s.gw.stderr.slice(-3000)}`);
  const h = await request(s.gw.port, { path: '/healthz', timeoutMs: 3_000 });
  assert.equal(h.status, 200);
});

const auth = () => ({ authorization: `Bearer ${s.key}` });

async function expect400(p, body, label) {
  s.mock.clearRequests();
  const res = await postJson(s.gw.port, s.key, p, body);
  assert.equal(res.status, 400, `${label}: expected 400, got ${res.status}: ${res.text}`);
  assertOpenAIError(assert, res, 400, 'invalid_request_error');
  assert.equal(s.mock.recorded().length, 0, `${label}: a bad request must not reach the upstream`);
  return res;
}

test('malformed JSON gets 400', T, async () => {
  const bodies = {
    'truncated': '{"model":"gpt-4o-mini","messages":[',
    'not json': 'hello world',
    'trailing garbage': '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]} trailing',
    'trailing comma': '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],}',
    'single quotes': "{'model':'gpt-4o-mini','messages':[]}",
    'unterminated string': '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x}]}',
    'bad escape': '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"\\q"}]}',
    'control char in string': '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a\u0001b"}]}',
    'empty body': '',
    'nesting bomb': '['.repeat(100_000),
  };
  for (const [label, body] of Object.entries(bodies)) await expect400('/v1/chat/completions', body, label);
  await expect400('/v1/embeddings', '{"model":"text-embedding-3-small","input":', 'embeddings truncated');
});

test('wrong types and missing fields get 400', T, async () => {
  const msgs = [{ role: 'user', content: 'x' }];
  const bodies = {
    'model is a number': { model: 5, messages: msgs },
    'model is null': { model: null, messages: msgs },
    'model is an array': { model: ['gpt-4o-mini'], messages: msgs },
    'messages is a string': { model: 'gpt-4o-mini', messages: 'hi' },
    'messages is an object': { model: 'gpt-4o-mini', messages: { role: 'user' } },
    'messages is null': { model: 'gpt-4o-mini', messages: null },
    'stream is a string': { model: 'gpt-4o-mini', messages: msgs, stream: 'yes' },
    'stream is a number': { model: 'gpt-4o-mini', messages: msgs, stream: 1 },
    'missing messages': { model: 'gpt-4o-mini' },
    'missing model': { messages: msgs },
    'body is an array': [{ model: 'gpt-4o-mini', messages: msgs }],
    'body is a string': '"gpt-4o-mini"',
    'body is null': 'null',
  };
  for (const [label, body] of Object.entries(bodies)) await expect400('/v1/chat/completions', body, label);
  await expect400('/v1/embeddings', { input: 'x' }, 'embeddings without model');
  await expect400('/v1/embeddings', { model: 7, input: 'x' }, 'embeddings model is a number');
  const res = await postJson(s.gw.port, s.key, '/v1/chat/completions', { model: 'gpt-4o-mini' });
  assert.match(res.json.error.message, /messages/, 'the message names the missing field');
});

test('invalid UTF-8 inside a JSON string gets 400', T, async () => {
  const head = Buffer.from('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a');
  const tail = Buffer.from('b"}]}');
  const bad = {
    'lone 0xff': [0xff],
    'truncated 2-byte sequence': [0xc3, 0x28],
    'overlong slash': [0xc0, 0xaf],
    'encoded surrogate': [0xed, 0xa0, 0x80],
    'beyond U+10FFFF': [0xf4, 0x90, 0x80, 0x80],
    'lone continuation byte': [0x80],
  };
  for (const [label, bytes] of Object.entries(bad)) {
    await expect400('/v1/chat/completions', Buffer.concat([head, Buffer.from(bytes), tail]), label);
  }
  // Valid multi-byte UTF-8 is of course fine.
  const ok = await chat(s.gw.port, s.key, Buffer.from('{"model":"echo-chat","messages":[{"role":"user","content":"h\u00e9llo \u2603 \ud83d\ude00"}]}'));
  assert.equal(ok.status, 200, ok.text);
});

test('a body over the limit gets 413 (Content-Length and chunked)', T, async () => {
  const size = 11 * 1024 * 1024;
  const filler = Buffer.alloc(size - 100, 'a');
  const body = Buffer.concat([Buffer.from('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"'), filler, Buffer.from('"}]}')]);
  const slices = [];
  const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${s.key}\r\n` +
    `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
  slices.push(Buffer.from(head));
  for (let i = 0; i < body.length; i += 256 * 1024) slices.push(body.subarray(i, i + 256 * 1024));
  const gotResponse = (buf) => parseHttpResponses(buf).responses.length >= 1;
  const r1 = await rawExchange(s.gw.port, slices, { timeoutMs: 15_000, until: gotResponse });
  const [res1] = parseHttpResponses(r1.data).responses;
  assert.ok(res1, `no HTTP response to an 11 MiB body (closed: ${r1.closedByServer}, write error: ${r1.writeError})`);
  assert.equal(res1.status, 413, res1.text);
  assert.equal(JSON.parse(res1.text).error.type, 'invalid_request_error');

  const chunked = [Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${s.key}\r\n` +
    'content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n')];
  for (let i = 0; i < body.length; i += 256 * 1024) {
    const part = body.subarray(i, i + 256 * 1024);
    chunked.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'));
  }
  chunked.push(Buffer.from('0\r\n\r\n'));
  const r2 = await rawExchange(s.gw.port, chunked, { timeoutMs: 15_000, until: gotResponse });
  const [res2] = parseHttpResponses(r2.data).responses;
  assert.ok(res2, `no HTTP response to an 11 MiB chunked body (closed: ${r2.closedByServer})`);
  assert.equal(res2.status, 413, res2.text);
});

test('a body just under the limit is accepted', T, async () => {
  const filler = 'b'.repeat(MAX_BODY - 1024);
  const res = await chat(s.gw.port, s.key, { model: 'echo-chat', messages: [{ role: 'user', content: filler }] },
    { timeoutMs: 20_000 });
  assert.equal(res.status, 200, res.text.slice(0, 500));
});

test('headers sent one byte a second: the connection is closed after the header timeout', T, async () => {
  const sock = await connect(s.gw.port);
  const t0 = Date.now();
  let closedAt = 0;
  let received = '';
  sock.on('data', (d) => { received += d.toString('latin1'); });
  const closed = new Promise((resolve) => sock.on('close', () => { closedAt = Date.now(); resolve(); }));
  sock.on('error', () => {});
  const text = `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${s.key}\r\n`;
  for (let i = 0; i < text.length && !closedAt && Date.now() - t0 < 8_000; i++) {
    sock.write(text[i]);
    await within(closed, 1_000);
  }
  if (!closedAt) sock.destroy();
  assert.ok(closedAt, `the gateway kept a trickling connection open for ${Date.now() - t0} ms`);
  const took = closedAt - t0;
  assert.ok(took >= HEADER_TIMEOUT_MS - 200, `closed after ${took} ms, before the header timeout`);
  assert.ok(took <= HEADER_TIMEOUT_MS + 2_500, `closed after ${took} ms (header timeout ${HEADER_TIMEOUT_MS} ms)`);
  assert.ok(received === '' || /^HTTP\/1\.1 408/.test(received), `unexpected answer: ${received.slice(0, 200)}`);
});

test('a connection that sends nothing is closed after the header or idle timeout', T, async () => {
  const sock = await connect(s.gw.port);
  const t0 = Date.now();
  sock.on('error', () => {});
  const limit = Math.max(HEADER_TIMEOUT_MS, IDLE_TIMEOUT_MS) + 2_000;
  const closedAt = await within(new Promise((resolve) => sock.on('close', () => resolve(Date.now()))), limit, 0);
  sock.destroy();
  assert.ok(closedAt, `a silent connection stayed open for ${limit} ms ` +
    `(LLMGW_HEADER_TIMEOUT_MS=${HEADER_TIMEOUT_MS}, LLMGW_IDLE_TIMEOUT_MS=${IDLE_TIMEOUT_MS})`);
});

test('a keep-alive connection left idle is closed after the idle timeout', T, async () => {
  const sock = await connect(s.gw.port);
  const t0 = Date.now();
  sock.on('error', () => {});
  let data = '';
  sock.on('data', (d) => { data += d.toString('latin1'); });
  const closed = new Promise((resolve) => sock.on('close', () => resolve(Date.now())));
  sock.write(rawRequest({ method: 'GET', path: '/healthz' }));
  const closedAt = await within(closed, IDLE_TIMEOUT_MS + 3_000, 0);
  sock.destroy();
  assert.match(data, /^HTTP\/1\.1 200/, 'the request on the connection was answered');
  assert.ok(closedAt, `an idle keep-alive connection stayed open for ${IDLE_TIMEOUT_MS + 3_000} ms`);
  assert.ok(closedAt - t0 >= Math.min(HEADER_TIMEOUT_MS, IDLE_TIMEOUT_MS) - 200, `closed too early: ${closedAt - t0} ms`);
});

test('pipelined requests on one connection are answered in order', T, async () => {
  const reqs = [
    rawRequest({ headers: { ...auth(), 'x-request-id': 'pipe-1' },
      body: chatBody('gpt-4o-mini', 'first, slow [mock:delay_ms=300]') }),
    rawRequest({ headers: { ...auth(), 'x-request-id': 'pipe-2' }, body: chatBody('echo-chat', 'second') }),
    rawRequest({ method: 'GET', path: '/v1/models', headers: { ...auth(), 'x-request-id': 'pipe-3' } }),
    rawRequest({ method: 'GET', path: '/healthz', headers: { 'x-request-id': 'pipe-4' } }),
  ];
  const r = await rawExchange(s.gw.port, Buffer.concat(reqs), {
    timeoutMs: 10_000,
    until: (buf) => parseHttpResponses(buf).responses.length >= 4,
  });
  const { responses } = parseHttpResponses(r.data);
  assert.equal(responses.length, 4, `got ${responses.length} responses: ${r.data.toString('latin1').slice(0, 500)}`);
  assert.deepEqual(responses.map((x) => x.headers['x-request-id']), ['pipe-1', 'pipe-2', 'pipe-3', 'pipe-4']);
  assert.deepEqual(responses.map((x) => x.status), [200, 200, 200, 200]);
  assert.equal(JSON.parse(responses[0].text).model, 'gpt-4o-mini-2024-07-18');
  assert.equal(JSON.parse(responses[2].text).object, 'list');
});

test('a raw client that resets its connection mid-stream: upstream closed, gateway fine', T, async () => {
  s.mock.clearRequests();
  const sock = await connect(s.gw.port);
  sock.on('error', () => {});
  sock.write(rawRequest({ headers: auth(),
    body: chatBody('gpt-4o-mini', 'reset me [mock:chunks=80] [mock:chunk_delay_ms=50]', { stream: true }) }));
  let data = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no stream data: ${data}`)), 5_000);
    sock.on('data', (d) => {
      data += d.toString('latin1');
      if (sseData(data.slice(data.indexOf('\r\n\r\n') + 4)).length >= 2) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  sock.resetAndDestroy();
  const gone = Date.now();
  const recs = await s.mock.waitFor((rs) => rs.some((x) => x.closed_early), 2_000,
    'the upstream stream to be closed after the client reset');
  assert.ok(recs.find((x) => x.closed_early).closed_at_ms - gone < 2_000);
});

test('a valid chunked request body is accepted', T, async () => {
  const body = Buffer.from(JSON.stringify(chatBody('gpt-4o-mini', 'chunked upload [mock:chunks=1]')));
  const parts = [body.subarray(0, 10), body.subarray(10, 25), body.subarray(25)];
  const head = `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${s.key}\r\n` +
    'content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n';
  const wire = [Buffer.from(head), ...parts.flatMap((p) => [Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]),
    Buffer.from('0\r\n\r\n')];
  const r = await rawExchange(s.gw.port, wire, { timeoutMs: 5_000, until: (b) => parseHttpResponses(b).responses.length >= 1 });
  const [res] = parseHttpResponses(r.data).responses;
  assert.ok(res, `no answer to a chunked body: ${r.data.toString('latin1').slice(0, 300)}`);
  assert.equal(res.status, 200, res.text);
  assert.equal(JSON.parse(s.mock.recorded().at(-1).body_text).model, 'gpt-4o-mini-2024-07-18');
});

test('hostile request ids and paths do not break the JSON access log', T, async () => {
  const hostile = 'rid-"quote"-\\back\\slash-{brace}-\u00e9';
  const wire = Buffer.concat([
    Buffer.from(`GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-request-id: `, 'latin1'),
    Buffer.from(hostile, 'utf8'),
    Buffer.from('\r\n\r\n', 'latin1'),
    Buffer.from('GET /v1/models?q=%22%5C"\\ HTTP/1.1\r\nhost: 127.0.0.1\r\nx-request-id: ' + 'x'.repeat(4000) + '\r\n\r\n', 'latin1'),
  ]);
  const r = await rawExchange(s.gw.port, wire, { timeoutMs: 5_000, until: (b) => parseHttpResponses(b).responses.length >= 2 });
  const { responses } = parseHttpResponses(r.data);
  assert.ok(responses.length >= 1, 'no answer');
  for (const res of responses) {
    const rid = res.headers['x-request-id'] ?? '';
    assert.ok(!/[\r\n]/.test(rid), 'no header injection');
    assert.ok(rid.length > 0 && rid.length <= 4000);
  }
  await sleep(200);
  const bad = s.gw.nonJsonStderrLines();
  assert.deepEqual(bad, [], `stderr lines that are not JSON objects: ${bad.join('\n').slice(0, 1000)}`);
});

test('unknown routes and methods get OpenAI-shaped errors', T, async () => {
  const a = await request(s.gw.port, { path: '/v1/nothing-here', headers: auth() });
  assert.equal(a.status, 404, a.text);
  assertOpenAIError(assert, a, 404);
  const b = await request(s.gw.port, { path: '/v1/chat/completions', headers: auth() });
  assert.ok(b.status === 405 || b.status === 404, `GET on a POST route: ${b.status}`);
  assertOpenAIError(assert, b, b.status);
});

test('1,000 connections opened and dropped: still answering, fds back near baseline', { timeout: 60_000 }, async () => {
  for (let i = 0; i < 3; i++) {
    const r = await chat(s.gw.port, s.key, chatBody('echo-chat', 'warm up'));
    assert.equal(r.status, 200);
  }
  await sleep(200);
  const baseline = s.gw.fdCount();
  const partial = Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${s.key}\r\ncontent-length: 500\r\n\r\n{"model":`);
  const full = rawRequest({ method: 'GET', path: '/healthz' });
  const one = (i) => new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port: s.gw.port });
    const timer = setTimeout(() => { sock.destroy(); resolve('timeout'); }, 5_000);
    sock.on('error', () => {});
    sock.on('close', () => { clearTimeout(timer); resolve('closed'); });
    // The client drops the connection whatever the server does; the server must notice.
    const drop = () => setTimeout(() => sock.destroy(), 20);
    sock.on('connect', () => {
      switch (i % 5) {
        case 0: sock.end(); drop(); break; // FIN without a byte
        case 1: sock.write(partial, () => sock.destroy()); break; // half a request
        case 2: sock.resetAndDestroy(); break; // RST
        case 3: sock.write(full, () => sock.destroy()); break; // a request, answer never read
        default: sock.write('GET /healthz HTT', () => { sock.end(); drop(); }); break; // half a request line, FIN
      }
    });
  });
  const total = 1_000;
  const batch = 100;
  for (let i = 0; i < total; i += batch) {
    await Promise.all(Array.from({ length: batch }, (_, j) => one(i + j)));
  }
  const h = await request(s.gw.port, { path: '/healthz', timeoutMs: 3_000 });
  assert.equal(h.status, 200);
  const r = await chat(s.gw.port, s.key, chatBody('gpt-4o-mini', 'after the storm'));
  assert.equal(r.status, 200, r.text);
  let now = 0;
  try {
    await waitUntil(() => {
      now = s.gw.fdCount();
      return now <= baseline + 10;
    }, 5_000, 'the fd count to return near its baseline');
  } catch {
    assert.fail(`open fds: baseline ${baseline}, now ${now} after 1,000 dropped connections (leak)`);
  }
});
