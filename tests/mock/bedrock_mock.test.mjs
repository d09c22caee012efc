// Self-test of the Bedrock mock, driven by AWS's own client (@aws-sdk/client-bedrock-runtime):
// if the SDK decodes the mock's JSON, event-stream frames and errors, and the mock accepts the
// SDK's signatures (and refuses wrong ones), the mock speaks Bedrock's wire format. The
// encoder and the SigV4 verifier are also checked against AWS's own vectors in tests/data.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import {
  BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand, ValidationException, AccessDeniedException,
  ResourceNotFoundException, ThrottlingException, ModelTimeoutException, InternalServerException,
  ServiceUnavailableException, ModelNotReadyException, ModelErrorException, ModelStreamErrorException,
} from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';

import {
  BedrockMock, DEFAULT_CREDENTIALS, DEFAULT_API_KEY, DEFAULT_REPLY, crc32, encodeFrame, decodeFrames,
  EventStreamDecoder, sigv4Expected, parseAuthorization, canonicalUri, eventFrame, approxTokens,
} from './bedrock_mock.mjs';
import { spawnMock } from './mock_util.mjs';

process.removeAllListeners('warning'); // the SDK's Node-version notice
const T = { timeout: 20_000 };
const HERE = path.dirname(fileURLToPath(import.meta.url));
const DATA = path.join(HERE, '..', 'data');
const MODEL = 'us.anthropic.claude-sonnet-4-20250514-v1:0';
const [LONG_TERM, TEMPORARY] = DEFAULT_CREDENTIALS;
let mock;
const clients = [];

before(async () => {
  mock = new BedrockMock();
  await mock.start();
});

after(async () => {
  for (const c of clients) c.destroy();
  await mock?.stop();
});

/** A client on the mock. http1: HTTP/1.1 (what the gateway speaks); else the SDK's default HTTP/2. */
function client({ creds = LONG_TERM, region = 'us-east-1', http1 = false, token } = {}) {
  const cfg = { endpoint: mock.url, region, maxAttempts: 1 };
  if (token) Object.assign(cfg, { token: { token }, authSchemePreference: ['httpBearerAuth'] });
  else cfg.credentials = { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.sessionToken };
  if (http1) cfg.requestHandler = new NodeHttpHandler();
  const c = new BedrockRuntimeClient(cfg);
  clients.push(c);
  return c;
}

const user = (text, extra = {}) => ({ modelId: MODEL, messages: [{ role: 'user', content: [{ text }] }], ...extra });

async function collect(stream) {
  const events = [];
  for await (const e of stream) events.push(e);
  return events;
}

const WEATHER_TOOL = { toolSpec: { name: 'get_weather', description: 'Weather for a city',
  inputSchema: { json: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'] } } } };

// ---------------------------------------------------------------------------------------------
// Converse

test('Converse over HTTP/2 and HTTP/1.1, with and without a session token: signature verified, path encoded', T, async () => {
  for (const [creds, http1] of [[LONG_TERM, false], [TEMPORARY, false], [LONG_TERM, true], [TEMPORARY, true]]) {
    mock.clearRequests();
    const r = await client({ creds, http1 }).send(new ConverseCommand(user('hello')));
    assert.equal(r.$metadata.httpStatusCode, 200);
    assert.deepEqual(r.output.message, { role: 'assistant', content: [{ text: DEFAULT_REPLY }] });
    assert.equal(r.stopReason, 'end_turn');
    assert.equal(r.usage.outputTokens, 9);
    assert.equal(r.usage.inputTokens, approxTokens('hello'));
    assert.equal(r.usage.totalTokens, r.usage.inputTokens + 9);
    assert.equal(r.metrics.latencyMs, 42);
    const [rec] = mock.recorded();
    assert.equal(rec.path, '/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse');
    assert.equal(rec.model_id, MODEL);
    assert.equal(rec.http_version, http1 ? '1.1' : '2.0');
    assert.equal(rec.signature_verified, true);
    assert.equal(rec.auth.access_key_id, creds.accessKeyId);
    // Bedrock's canonical URI encodes the already-encoded segments once more.
    assert.equal(rec.canonical_request.split('\n')[1], '/model/us.anthropic.claude-sonnet-4-20250514-v1%253A0/converse');
    assert.deepEqual(rec.body, { messages: [{ role: 'user', content: [{ text: 'hello' }] }] });
    if (creds.sessionToken) assert.equal(rec.headers['x-amz-security-token'], '<redacted>');
    assert.ok(!JSON.stringify(rec).includes(creds.secretAccessKey));
  }
});

test('Bedrock API key as Bearer token', T, async () => {
  mock.clearRequests();
  const r = await client({ token: DEFAULT_API_KEY }).send(new ConverseCommand(user('hi')));
  assert.equal(r.output.message.content[0].text, DEFAULT_REPLY);
  assert.equal(mock.recorded()[0].auth.scheme, 'bearer');
  assert.equal(mock.recorded()[0].headers.authorization, 'Bearer <redacted>');
  await assert.rejects(client({ token: 'wrong-key' }).send(new ConverseCommand(user('hi'))),
    (e) => e.name === 'UnrecognizedClientException' && e.$metadata.httpStatusCode === 403);
});

test('wrong secret, unknown key, wrong token, wrong region: refused with 403 and the typed error', T, async () => {
  mock.clearRequests();
  await assert.rejects(client({ creds: { ...LONG_TERM, secretAccessKey: 'not-the-secret' } }).send(new ConverseCommand(user('x'))),
    (e) => e.name === 'InvalidSignatureException' && e.$metadata.httpStatusCode === 403 &&
      /signature we calculated does not match/.test(e.message));
  const rec = mock.recorded()[0];
  assert.equal(rec.signature_verified, false);
  assert.equal(rec.status, 403);
  assert.equal(rec.error_type, 'InvalidSignatureException');
  await assert.rejects(client({ creds: { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 's' } }).send(new ConverseCommand(user('x'))),
    (e) => e.name === 'UnrecognizedClientException' && e.$metadata.httpStatusCode === 403);
  await assert.rejects(client({ creds: { ...TEMPORARY, sessionToken: 'other' } }).send(new ConverseCommand(user('x'))),
    (e) => e.name === 'UnrecognizedClientException');
  await assert.rejects(client({ creds: { ...TEMPORARY, sessionToken: undefined } }).send(new ConverseCommand(user('x'))),
    (e) => e.name === 'UnrecognizedClientException');
  await assert.rejects(client({ region: 'eu-west-1' }).send(new ConverseCommand(user('x'))),
    (e) => e.name === 'InvalidSignatureException' && /region/.test(e.message));
});

test('signature checks: tampered body, path, header; clock skew; no Authorization', T, async () => {
  // Sign with the SDK's signer through a client, then replay the exact request with changes.
  let captured;
  const spy = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      captured = { method: req.method, path: req.url, headers: { ...req.headers }, body: Buffer.concat(chunks) };
      res.writeHead(500, { 'x-amzn-errortype': 'InternalServerException', 'content-type': 'application/json' });
      res.end('{"message":"spy"}');
    });
  });
  await new Promise((r) => spy.listen(0, '127.0.0.1', r));
  const c = new BedrockRuntimeClient({ endpoint: `http://127.0.0.1:${spy.address().port}`, region: 'us-east-1', maxAttempts: 1,
    credentials: { ...LONG_TERM }, requestHandler: new NodeHttpHandler() });
  const spyErr = await c.send(new ConverseCommand(user('signed'))).catch((e) => e);
  assert.ok(captured, `the spy got no request: ${spyErr}`);
  c.destroy();
  spy.close();
  // The spy's port is part of the signed host header: replay with that host value.
  const replay = (changes = {}) => new Promise((resolve, reject) => {
    const headers = { ...captured.headers, ...changes.headers };
    for (const k of Object.keys(headers)) if (headers[k] === undefined) delete headers[k];
    const body = changes.body ?? captured.body;
    headers['content-length'] = String(body.length);
    const req = http.request({ host: '127.0.0.1', port: mock.port, method: 'POST', path: changes.path ?? captured.path,
      headers, setHost: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['x-amzn-errortype'],
        json: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end(body);
  });
  const ok = await replay();
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  const tampered = await replay({ body: Buffer.from(captured.body.toString().replace('signed', 'signer')) });
  assert.equal(tampered.status, 403);
  assert.equal(tampered.type, 'InvalidSignatureException');
  assert.deepEqual(Object.keys(tampered.json), ['message']);
  const noSha = { ...captured.headers };
  delete noSha['x-amz-content-sha256'];
  // Without x-amz-content-sha256 (a signed header) the canonical request cannot be rebuilt.
  const missing = await new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: mock.port, method: 'POST', path: captured.path, headers: noSha, setHost: false },
      (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.end(captured.body);
  });
  assert.equal(missing, 403);
  const otherPath = await replay({ path: captured.path.replace('%3A', ':') });
  assert.equal(otherPath.status, 403, 'a raw ":" signs differently from "%3A"');
  const hdr = await replay({ headers: { 'amz-sdk-request': 'attempt=2; max=1' } });
  assert.equal(hdr.status, 403);
  const nosig = await replay({ headers: { authorization: undefined } });
  assert.equal(nosig.status, 403);
  assert.equal(nosig.type, 'MissingAuthenticationTokenException');
  // The clock: the same signed request 6 minutes earlier or later is refused, 4 minutes is fine.
  const realNow = mock.now;
  try {
    mock.now = () => realNow() + 6 * 60_000;
    const late = await replay();
    assert.equal(late.status, 403);
    assert.match(late.json.message, /Signature expired/);
    mock.now = () => realNow() - 6 * 60_000;
    assert.match((await replay()).json.message, /not yet current/);
    mock.now = () => realNow() + 4 * 60_000;
    assert.equal((await replay()).status, 200);
  } finally {
    mock.now = realNow;
  }
});

test('Converse: tool use, reasoning, max_tokens, stop sequences, cache points', T, async () => {
  const c = client();
  const tool = await c.send(new ConverseCommand(user('weather? [mock:tool_use]', { toolConfig: { tools: [WEATHER_TOOL] } })));
  assert.equal(tool.stopReason, 'tool_use');
  const tu = tool.output.message.content.find((b) => b.toolUse).toolUse;
  assert.equal(tu.name, 'get_weather');
  assert.deepEqual(tu.input, { city: 'mock', days: 1 });
  assert.match(tu.toolUseId, /^tooluse_/);
  // A full tool round trip is accepted.
  const round = await c.send(new ConverseCommand({ modelId: MODEL, toolConfig: { tools: [WEATHER_TOOL], toolChoice: { auto: {} } },
    messages: [{ role: 'user', content: [{ text: 'weather?' }] }, tool.output.message,
      { role: 'user', content: [{ toolResult: { toolUseId: tu.toolUseId, content: [{ json: { temp: 21 } }], status: 'success' } }] }] }));
  assert.equal(round.stopReason, 'end_turn');
  const forced = await c.send(new ConverseCommand(user('x', { toolConfig: { tools: [WEATHER_TOOL], toolChoice: { tool: { name: 'get_weather' } } } })));
  assert.equal(forced.stopReason, 'tool_use');
  assert.equal(forced.output.message.content.length, 1);

  const think = await c.send(new ConverseCommand(user('think', { additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens: 1024 } } })));
  const rc = think.output.message.content[0].reasoningContent.reasoningText;
  assert.ok(rc.text.length > 0 && rc.signature.length > 0);
  assert.equal(think.output.message.content[1].text, DEFAULT_REPLY);

  const max = await c.send(new ConverseCommand(user('m', { inferenceConfig: { maxTokens: 3, temperature: 0.5, topP: 0.9 } })));
  assert.equal(max.stopReason, 'max_tokens');
  assert.equal(max.output.message.content[0].text, 'Hello! How');
  assert.equal(max.usage.outputTokens, 3);
  const stop = await c.send(new ConverseCommand(user('s', { inferenceConfig: { stopSequences: [' help'] } })));
  assert.equal(stop.stopReason, 'stop_sequence');
  assert.equal(stop.output.message.content[0].text, 'Hello! How can I');
  const filtered = await c.send(new ConverseCommand(user('[mock:stop_reason=content_filtered]')));
  assert.equal(filtered.stopReason, 'content_filtered');

  mock.clearCache();
  const sys = 'You are a careful assistant. '.repeat(40);
  const cached = (q) => user(q, { system: [{ text: sys }, { cachePoint: { type: 'default' } }] });
  const first = await c.send(new ConverseCommand(cached('first')));
  assert.equal(first.usage.cacheWriteInputTokens, approxTokens(sys));
  assert.equal(first.usage.cacheReadInputTokens, 0);
  assert.equal(first.usage.inputTokens, approxTokens('first'));
  const second = await c.send(new ConverseCommand(cached('second')));
  assert.equal(second.usage.cacheReadInputTokens, approxTokens(sys));
  assert.equal(second.usage.cacheWriteInputTokens, 0);
  assert.equal(second.usage.totalTokens, second.usage.inputTokens + second.usage.outputTokens + approxTokens(sys));
  const forcedUsage = await c.send(new ConverseCommand(user('[mock:input_tokens=50] [mock:output_tokens=7] [mock:cache_read_tokens=20] [mock:cache_write_tokens=3]')));
  assert.deepEqual(forcedUsage.usage, { inputTokens: 50, outputTokens: 7, totalTokens: 80, cacheReadInputTokens: 20, cacheWriteInputTokens: 3 });

  const img = await c.send(new ConverseCommand({ modelId: MODEL, messages: [{ role: 'user', content: [
    { text: 'what is this?' }, { image: { format: 'png', source: { bytes: Buffer.from('\x89PNG fake') } } }] }] }));
  assert.equal(img.usage.inputTokens, approxTokens('what is this?') + 100);
});

test('every Converse error maps to the SDK\'s typed exception with AWS\'s status', T, async () => {
  const c = client();
  const cases = [
    ['ValidationException', ValidationException, 400], ['AccessDeniedException', AccessDeniedException, 403],
    ['ThrottlingException', ThrottlingException, 429], ['ModelTimeoutException', ModelTimeoutException, 408],
    ['InternalServerException', InternalServerException, 500], ['ServiceUnavailableException', ServiceUnavailableException, 503],
    ['ModelNotReadyException', ModelNotReadyException, 429], ['ModelErrorException', ModelErrorException, 424],
    ['ResourceNotFoundException', ResourceNotFoundException, 404],
  ];
  for (const [name, Cls, status] of cases) {
    for (const Cmd of [ConverseCommand, ConverseStreamCommand]) {
      await assert.rejects(c.send(new Cmd(user(`[mock:error=${name}]`))), (e) => {
        assert.ok(e instanceof Cls, `${name}: got ${e.name}`);
        assert.equal(e.$metadata.httpStatusCode, status);
        assert.ok(e.message.length > 0);
        return true;
      });
    }
  }
  await assert.rejects(c.send(new ConverseCommand({ ...user('x'), modelId: 'anthropic.claude-99' })),
    (e) => e instanceof ResourceNotFoundException && e.$metadata.httpStatusCode === 404);
  const invalid = [
    { messages: [{ role: 'assistant', content: [{ text: 'x' }] }] },
    { messages: [{ role: 'user', content: [{ text: 'a' }] }, { role: 'user', content: [{ text: 'b' }] }] },
    { messages: [{ role: 'user', content: [] }] },
    { messages: [{ role: 'user', content: [{ text: 'x', image: { format: 'png', source: { bytes: Buffer.from('a') } } }] }] },
    { messages: [{ role: 'user', content: [{ text: 'x' }] }], inferenceConfig: { temperature: 1.5 } },
    { messages: [{ role: 'user', content: [{ text: 'x' }] }], inferenceConfig: { maxTokens: 0 } },
    { messages: [{ role: 'user', content: [{ text: 'x' }] }], toolConfig: { tools: [] } },
    { messages: [{ role: 'user', content: [{ text: 'x' }] }], toolConfig: { tools: [WEATHER_TOOL], toolChoice: { tool: { name: 'nope' } } } },
    { messages: [{ role: 'user', content: [{ toolResult: { toolUseId: 't', content: [{ text: 'r' }] } }] }] },
    { messages: [{ role: 'user', content: [{ text: 'x' }] }], system: [{ cachePoint: { type: 'ephemeral' } }] },
    { messages: [{ role: 'user', content: [{ text: '[mock:bogus]' }] }] },
  ];
  for (const body of invalid) {
    await assert.rejects(c.send(new ConverseCommand({ modelId: MODEL, ...body })),
      (e) => e instanceof ValidationException && e.$metadata.httpStatusCode === 400, JSON.stringify(body));
  }
});

// ---------------------------------------------------------------------------------------------
// ConverseStream

function summarize(events) {
  return {
    types: events.map((e) => Object.keys(e)[0]),
    text: events.filter((e) => e.contentBlockDelta?.delta?.text !== undefined).map((e) => e.contentBlockDelta.delta.text).join(''),
    reasoning: events.filter((e) => e.contentBlockDelta?.delta?.reasoningContent?.text).map((e) => e.contentBlockDelta.delta.reasoningContent.text).join(''),
    toolInput: events.filter((e) => e.contentBlockDelta?.delta?.toolUse).map((e) => e.contentBlockDelta.delta.toolUse.input).join(''),
    stop: events.find((e) => e.messageStop)?.messageStop.stopReason,
    usage: events.find((e) => e.metadata)?.metadata.usage,
  };
}

test('ConverseStream: text, tool use, reasoning, usage with cache fields (HTTP/2 and HTTP/1.1)', T, async () => {
  for (const http1 of [false, true]) {
    const c = client({ http1, creds: TEMPORARY });
    const r = await c.send(new ConverseStreamCommand(user('hello')));
    const s = summarize(await collect(r.stream));
    assert.deepEqual(s.types, ['messageStart', ...Array(9).fill('contentBlockDelta'), 'contentBlockStop', 'messageStop', 'metadata']);
    assert.equal(s.text, DEFAULT_REPLY);
    assert.equal(s.stop, 'end_turn');
    assert.equal(s.usage.outputTokens, 9);

    const t = summarize(await collect((await c.send(new ConverseStreamCommand(user('w [mock:tool_use]', { toolConfig: { tools: [WEATHER_TOOL] } })))).stream));
    assert.equal(t.stop, 'tool_use');
    assert.deepEqual(JSON.parse(t.toolInput), { city: 'mock', days: 1 });
    assert.ok(t.types.includes('contentBlockStart'));

    const events = await collect((await c.send(new ConverseStreamCommand(user('r [mock:reasoning]')))).stream);
    const rs = summarize(events);
    assert.ok(rs.reasoning.length > 0);
    assert.ok(events.some((e) => e.contentBlockDelta?.delta?.reasoningContent?.signature));
    assert.equal(rs.text, DEFAULT_REPLY);
    assert.equal(events.find((e) => e.contentBlockDelta?.delta?.text).contentBlockDelta.contentBlockIndex, 1);

    mock.clearCache();
    const sys = [{ text: 'Long system prompt. '.repeat(30) }, { cachePoint: { type: 'default' } }];
    const w = summarize(await collect((await c.send(new ConverseStreamCommand(user('a', { system: sys })))).stream));
    const rd = summarize(await collect((await c.send(new ConverseStreamCommand(user('b', { system: sys })))).stream));
    assert.equal(w.usage.cacheWriteInputTokens, approxTokens(sys[0].text));
    assert.equal(rd.usage.cacheReadInputTokens, approxTokens(sys[0].text));
    const max = summarize(await collect((await c.send(new ConverseStreamCommand(user('m', { inferenceConfig: { maxTokens: 2 } })))).stream));
    assert.equal(max.stop, 'max_tokens');
    assert.equal(max.text, 'Hello!');
  }
});

test('stream and non-stream report the same usage', T, async () => {
  const c = client();
  const body = user('parity [mock:chunks=5]', { system: [{ text: 'sys' }] });
  const j = await c.send(new ConverseCommand(body));
  const s = summarize(await collect((await c.send(new ConverseStreamCommand(body))).stream));
  assert.deepEqual(s.usage, j.usage);
  assert.equal(s.text, j.output.message.content[0].text);
});

test('mid-stream exception frames surface as the typed exception in the iterator', T, async () => {
  const c = client({ http1: true });
  for (const [name, Cls] of [['throttlingException', ThrottlingException], ['modelStreamErrorException', ModelStreamErrorException],
    ['internalServerException', InternalServerException], ['serviceUnavailableException', ServiceUnavailableException],
    ['validationException', ValidationException]]) {
    const r = await c.send(new ConverseStreamCommand(user(`x [mock:stream_error=${name}] [mock:error_after_frames=4]`)));
    const seen = [];
    await assert.rejects((async () => { for await (const e of r.stream) seen.push(e); })(), (e) => {
      assert.ok(e instanceof Cls, `${name}: got ${e.name}`);
      if (name === 'modelStreamErrorException') assert.equal(e.originalStatusCode, 500);
      return true;
    });
    assert.equal(seen.length, 4, name);
  }
});

test('frames split into 1–7 byte TCP writes are decoded by the SDK; cut streams and bad CRCs fail', T, async () => {
  const c = client({ http1: true });
  for (const n of [1, 3, 7]) {
    const s = summarize(await collect((await c.send(new ConverseStreamCommand(user(`split [mock:split_bytes=${n}] [mock:chunks=4]`)))).stream));
    assert.equal(s.text, 'tok0 tok1 tok2 tok3', `split_bytes=${n}`);
    assert.equal(s.stop, 'end_turn');
  }
  const co = summarize(await collect((await c.send(new ConverseStreamCommand(user('c [mock:coalesce]')))).stream));
  assert.equal(co.text, DEFAULT_REPLY);
  // A cut stream: the SDK's iterator fails (no messageStop / metadata).
  const cutRes = await c.send(new ConverseStreamCommand(user('cut [mock:drop_after_frames=3]')));
  const seen = [];
  await assert.rejects((async () => { for await (const e of cutRes.stream) seen.push(e); })());
  assert.ok(seen.length <= 3);
  // A frame with a corrupted message CRC or prelude CRC is refused by the SDK's decoder.
  for (const d of ['[mock:bad_crc_frame=2]', '[mock:bad_prelude_crc_frame=2]']) {
    const r = await c.send(new ConverseStreamCommand(user(`crc ${d}`)));
    const got = [];
    await assert.rejects((async () => { for await (const e of r.stream) got.push(e); })(), /checksum|crc/i, d);
    assert.equal(got.length, 2, d);
  }
});

test('raw stream bytes: content type, frames, headers, CRCs (own decoder, byte by byte)', T, async () => {
  // HTTP/1.1 through a plain client signed by the SDK would need the signer; use the API key.
  const raw = await new Promise((resolve, reject) => {
    const body = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'raw [mock:chunks=2]' }] }] });
    const req = http.request({ host: '127.0.0.1', port: mock.port, method: 'POST',
      path: `/model/${encodeURIComponent(MODEL)}/converse-stream`,
      headers: { authorization: `Bearer ${DEFAULT_API_KEY}`, 'content-type': 'application/json' } }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ headers: res.headers, bytes: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
  assert.equal(raw.headers['content-type'], 'application/vnd.amazon.eventstream');
  assert.match(raw.headers['x-amzn-requestid'], /^[0-9a-f-]{36}$/);
  const whole = decodeFrames(raw.bytes);
  const dec = new EventStreamDecoder();
  const byByte = [];
  for (const b of raw.bytes) byByte.push(...dec.push(Buffer.from([b])));
  assert.equal(byByte.length, whole.length);
  assert.deepEqual(whole.map((m) => m.headerMap[':event-type']),
    ['messageStart', 'contentBlockDelta', 'contentBlockDelta', 'contentBlockStop', 'messageStop', 'metadata']);
  for (const m of whole) {
    assert.deepEqual(m.headers.map((h) => [h.name, h.type]), [[':event-type', 7], [':content-type', 7], [':message-type', 7]]);
    assert.equal(m.headerMap[':message-type'], 'event');
    assert.equal(m.headerMap[':content-type'], 'application/json');
    const p = JSON.parse(m.payload);
    assert.equal(typeof p.p, 'string', 'Bedrock-style padding member');
  }
});

test('HTTP errors before a stream are JSON with x-amzn-ErrorType, also on unknown routes', T, async () => {
  const r = await new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port: mock.port, path: '/foundation-models' }, (res) => {
      let t = '';
      res.on('data', (d) => { t += d; });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['x-amzn-errortype'], json: JSON.parse(t) }));
    });
  });
  assert.equal(r.status, 404);
  assert.equal(r.type, 'UnknownOperationException');
  assert.equal(typeof r.json.message, 'string');
});

// ---------------------------------------------------------------------------------------------
// The encoder and the verifier against AWS's vectors

test('CRC32 and the event-stream encoder reproduce the aws-sdk-go and smithy-rs vectors', T, () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  const dir = path.join(DATA, 'aws-eventstream', 'aws-sdk-go');
  const names = fs.readdirSync(path.join(dir, 'decoded', 'positive'));
  assert.ok(names.length >= 5);
  for (const name of names) {
    const d = JSON.parse(fs.readFileSync(path.join(dir, 'decoded', 'positive', name), 'utf8'));
    const encoded = fs.readFileSync(path.join(dir, 'encoded', 'positive', name));
    const headers = d.headers.map((h) => ({ name: h.name, type: h.type,
      value: [6, 7, 9].includes(h.type) ? Buffer.from(h.value, 'base64') : h.value }));
    const mine = encodeFrame(headers, Buffer.from(d.payload, 'base64'));
    assert.deepEqual(mine, encoded, name);
    const [m] = decodeFrames(encoded);
    assert.equal(m.preludeCrc | 0, d.prelude_crc | 0, name);
    assert.equal(m.messageCrc | 0, d.message_crc | 0, name);
  }
  for (const name of fs.readdirSync(path.join(dir, 'encoded', 'negative'))) {
    const expected = fs.readFileSync(path.join(dir, 'decoded', 'negative', name), 'utf8').trim();
    assert.throws(() => decodeFrames(fs.readFileSync(path.join(dir, 'encoded', 'negative', name))), { message: expected }, name);
  }
  const srs = path.join(DATA, 'aws-eventstream', 'smithy-rs');
  for (const name of fs.readdirSync(srs).filter((n) => n !== 'LICENSE')) {
    const bytes = fs.readFileSync(path.join(srs, name));
    if (name.startsWith('valid_')) {
      const [m] = decodeFrames(bytes);
      assert.deepEqual(encodeFrame(m.headers, m.payload), bytes, name);
    } else {
      assert.throws(() => decodeFrames(bytes), undefined, name);
    }
  }
  // And the mock's own event frames decode to what was encoded.
  const [ev] = decodeFrames(eventFrame('messageStart', { role: 'assistant' }));
  assert.deepEqual(JSON.parse(ev.payload), { role: 'assistant' });
});

function parseSignedRequest(text) {
  const [head, ...rest] = text.split('\n\n');
  const lines = head.split('\n');
  const first = lines[0];
  const method = first.slice(0, first.indexOf(' '));
  const target = first.slice(first.indexOf(' ') + 1, first.lastIndexOf(' HTTP/'));
  const pairs = [];
  for (const line of lines.slice(1)) {
    if (/^\s/.test(line) && pairs.length) { pairs.at(-1)[1] += ` ${line.trim()}`; continue; }
    const i = line.indexOf(':', 1);
    pairs.push([line.slice(0, i), line.slice(i + 1)]);
  }
  const q = target.indexOf('?');
  return { method, rawPath: q < 0 ? target : target.slice(0, q), rawQuery: q < 0 ? '' : target.slice(q + 1), pairs,
    body: rest.join('\n\n') };
}

test('SigV4 verifier: aws-c-auth header-signed vectors (canonical request and signature)', T, async () => {
  const crypto = await import('node:crypto');
  const dir = path.join(DATA, 'aws-sigv4', 'aws-c-auth-v4');
  let checked = 0;
  for (const name of fs.readdirSync(dir)) {
    const caseDir = path.join(dir, name);
    if (!fs.statSync(caseDir).isDirectory()) continue;
    const ctx = JSON.parse(fs.readFileSync(path.join(caseDir, 'context.json'), 'utf8'));
    const signed = fs.readFileSync(path.join(caseDir, 'header-signed-request.txt'), 'utf8');
    const r = parseSignedRequest(signed);
    const authz = r.pairs.find(([n]) => n.toLowerCase() === 'authorization')[1];
    const auth = parseAuthorization(authz);
    const amzDate = r.pairs.find(([n]) => n.toLowerCase() === 'x-amz-date')[1];
    const exp = sigv4Expected({ method: r.method, rawPath: r.rawPath, rawQuery: r.rawQuery,
      headerPairs: r.pairs.filter(([n]) => n.toLowerCase() !== 'authorization'),
      payloadHash: crypto.createHash('sha256').update(r.body).digest('hex'), auth, amzDate,
      secretAccessKey: ctx.credentials.secret_access_key, normalize: ctx.normalize });
    const want = fs.readFileSync(path.join(caseDir, 'header-canonical-request.txt'), 'utf8');
    assert.equal(exp.canonicalRequest, want, name);
    assert.equal(exp.signature, fs.readFileSync(path.join(caseDir, 'header-signature.txt'), 'utf8').trim(), name);
    assert.equal(auth.signature, exp.signature, name);
    checked++;
  }
  assert.equal(checked, 38, `checked ${checked}`);
  assert.equal(canonicalUri('/model/a%3A0/converse'), '/model/a%253A0/converse');
});

test('recording and admin routes; runnable as a program', T, async () => {
  mock.clearRequests();
  await client().send(new ConverseCommand(user('rec')));
  const admin = await new Promise((resolve) => http.get({ host: '127.0.0.1', port: mock.port, path: '/__mock/requests' }, (res) => {
    let t = '';
    res.on('data', (d) => { t += d; });
    res.on('end', () => resolve(JSON.parse(t)));
  }));
  assert.equal(admin.length, 1);
  assert.equal(admin[0].operation, 'Converse');
  assert.equal(admin[0].completed, true);

  const { child, line } = await spawnMock(spawn, path.join(HERE, 'bedrock_mock.mjs'), ['--port', '0', '--region', 'eu-central-1']);
  try {
    assert.equal(line.event, 'listening');
    assert.equal(line.region, 'eu-central-1');
    const c = new BedrockRuntimeClient({ endpoint: line.base_url, region: 'eu-central-1', maxAttempts: 1,
      credentials: line.credentials[0], requestHandler: new NodeHttpHandler() });
    const r = await c.send(new ConverseCommand(user('cli')));
    c.destroy();
    assert.equal(r.output.message.content[0].text, DEFAULT_REPLY);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('close', r));
  }
});
