// Self-test of the mock upstream: it must follow OpenAI's wire format, or every test built on
// it proves nothing. No gateway needed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import OpenAI from 'openai';

import {
  OpenAIMock, DEFAULT_REPLY, SYSTEM_FINGERPRINT, parseDirectives, expectedChatStreamTexts, sseBytes, approxTokens,
} from './openai_mock.mjs';
import { request, stream, sseData, sseChunks, within } from '../integration/harness.mjs';
import { spawnMock } from './mock_util.mjs';

const T = { timeout: 20_000 };
let mock;
let auth;
let client;

before(async () => {
  mock = new OpenAIMock();
  await mock.start();
  auth = { authorization: `Bearer ${mock.apiKey}` };
  client = new OpenAI({ apiKey: mock.apiKey, baseURL: mock.baseUrl, maxRetries: 0, timeout: 10_000 });
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
  const { child, line } = await spawnMock(spawn, file, ['--port', '0']);
  try {
    assert.equal(line.event, 'listening');
    const r = await request(line.port, { method: 'POST', path: '/v1/chat/completions',
      headers: { authorization: `Bearer ${line.api_key}` }, body: msg('cli') });
    assert.equal(r.status, 200);
    const rec = await request(line.port, { path: '/__mock/requests?min=1&timeout_ms=1000' });
    assert.equal(rec.json.length, 1);
  } finally {
    child.kill('SIGTERM');
    await within(new Promise((r) => child.on('close', r)), 3_000);
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

// ---------------------------------------------------------------------------------------------
// Tool calling, checked with the official SDK (its types, stream accumulator and tool runner).

const WEATHER = { name: 'get_weather', description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
    days: { type: 'integer' } }, required: ['city', 'unit'], additionalProperties: false } };
const TIME = { name: 'get_time', description: 'The time in a time zone',
  parameters: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] } };
const TOOLS = [{ type: 'function', function: WEATHER }, { type: 'function', function: TIME }];
const WEATHER_ARGS = '{"city":"mock","unit":"celsius"}';
const TIME_ARGS = '{"tz":"mock"}';
const CALL_ID = /^call_[0-9A-Za-z]{24}$/;
const ask = (content, extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], tools: TOOLS, ...extra });
const calls = (c) => c.choices[0].message.tool_calls.map((t) => [t.function.name, t.function.arguments]);

test('tools: tool_choice "required" answers tool_calls (content null, call_ ids, arguments from the schema); usage counts definitions and calls', T, async () => {
  const c = await client.chat.completions.create(ask('Weather in Paris? [mock:created=1700000000]', { tool_choice: 'required' }));
  const choice = c.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.deepEqual(Object.keys(choice.message), ['role', 'content', 'tool_calls', 'refusal', 'annotations']);
  assert.equal(choice.message.content, null);
  assert.equal(choice.message.tool_calls.length, 1);
  const [call] = choice.message.tool_calls;
  assert.deepEqual(Object.keys(call), ['id', 'type', 'function']);
  assert.match(call.id, CALL_ID);
  assert.equal(call.type, 'function');
  assert.deepEqual(call.function, { name: 'get_weather', arguments: WEATHER_ARGS });
  const again = await client.chat.completions.create(ask('Weather in Paris? [mock:created=1700000000]', { tool_choice: 'required' }));
  assert.deepEqual(again, c, 'deterministic: same ids, same arguments');

  const plain = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Weather in Paris? [mock:created=1700000000]' }] });
  assert.equal(c.usage.prompt_tokens, plain.usage.prompt_tokens + approxTokens(JSON.stringify(WEATHER)) + approxTokens(JSON.stringify(TIME)));
  assert.equal(c.usage.completion_tokens, approxTokens(`get_weather${WEATHER_ARGS}`));
  assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
  const two = await client.chat.completions.create(ask('Weather? [mock:tool_calls=2]', { tool_choice: 'required', n: 2 }));
  assert.equal(two.choices.length, 2);
  assert.deepEqual(two.choices.map((ch) => ch.message.tool_calls.length), [2, 2]);
  const ids = two.choices.flatMap((ch) => ch.message.tool_calls.map((t) => t.id));
  assert.equal(new Set(ids).size, 4, 'every call has its own id');
  assert.equal(two.usage.completion_tokens, 2 * (approxTokens(`get_weather${WEATHER_ARGS}`) + approxTokens(`get_time${TIME_ARGS}`)));
});

test('tools: tool_choice variants — auto (text unless a directive asks), a named function, none, allowed_tools', T, async () => {
  const auto = await client.chat.completions.create(ask('Hi'));
  assert.equal(auto.choices[0].message.content, DEFAULT_REPLY);
  assert.equal(auto.choices[0].message.tool_calls, undefined);
  assert.equal(auto.choices[0].finish_reason, 'stop');
  const asked = await client.chat.completions.create(ask('Hi [mock:tool_calls]', { tool_choice: 'auto' }));
  assert.deepEqual(calls(asked), [['get_weather', WEATHER_ARGS]]);
  const byName = await client.chat.completions.create(ask('Hi [mock:tool_call=get_time]'));
  assert.deepEqual(calls(byName), [['get_time', TIME_ARGS]]);
  const named = await client.chat.completions.create(ask('Hi [mock:tool_calls=3]',
    { tool_choice: { type: 'function', function: { name: 'get_time' } } }));
  assert.deepEqual(calls(named), [['get_time', TIME_ARGS]], 'a named function: one call of it');
  const none = await client.chat.completions.create(ask('Hi [mock:tool_calls=2]', { tool_choice: 'none' }));
  assert.equal(none.choices[0].message.content, DEFAULT_REPLY);
  assert.equal(none.choices[0].finish_reason, 'stop');
  const allowed = await client.chat.completions.create(ask('Hi', { tool_choice: { type: 'allowed_tools',
    allowed_tools: { mode: 'required', tools: [{ type: 'function', function: { name: 'get_time' } }] } } }));
  assert.deepEqual(calls(allowed), [['get_time', TIME_ARGS]]);
  const args = await client.chat.completions.create(ask('Hi [mock:tool_args={"city":"Paris","unit":"celsius"}]', { tool_choice: 'required' }));
  assert.deepEqual(calls(args), [['get_weather', '{"city":"Paris","unit":"celsius"}']]);
});

test('tools: parallel calls unless parallel_tool_calls is false', T, async () => {
  const three = await client.chat.completions.create(ask('Paris, Tokyo, London [mock:tool_calls=3]'));
  assert.deepEqual(calls(three), [['get_weather', WEATHER_ARGS], ['get_time', TIME_ARGS], ['get_weather', WEATHER_ARGS]]);
  assert.equal(new Set(three.choices[0].message.tool_calls.map((t) => t.id)).size, 3);
  assert.equal(three.choices[0].finish_reason, 'tool_calls');
  const one = await client.chat.completions.create(ask('Paris, Tokyo, London [mock:tool_calls=3]', { parallel_tool_calls: false }));
  assert.deepEqual(calls(one), [['get_weather', WEATHER_ARGS]]);
  const same = await client.chat.completions.create(ask('[mock:tool_calls=2] [mock:tool_call=get_time]', { parallel_tool_calls: true }));
  assert.deepEqual(calls(same), [['get_time', TIME_ARGS], ['get_time', TIME_ARGS]]);
});

test('tools: the round trip — tool results answered with a text that quotes them; the SDK runner (runTools) does the loop', T, async () => {
  const messages = [{ role: 'user', content: 'Weather and time in Paris? [mock:tool_calls=2]' }];
  const first = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, tools: TOOLS });
  const assistant = first.choices[0].message;
  const results = assistant.tool_calls.map((t, i) => ({ role: 'tool', tool_call_id: t.id, content: i === 0 ? 'Sunny, 21 °C' : '14:05 CET' }));
  const second = await client.chat.completions.create({ model: 'gpt-4o-mini', tools: TOOLS,
    messages: [...messages, assistant, ...results] });
  assert.equal(second.choices[0].finish_reason, 'stop');
  assert.equal(second.choices[0].message.content, 'Tool result: Sunny, 21 °C; 14:05 CET');
  assert.equal(second.choices[0].message.tool_calls, undefined);
  assert.equal(second.usage.completion_tokens, 7, 'one token per word of the reply');
  const expected = 3 + (4 + approxTokens(messages[0].content)) +
    (4 + approxTokens(`get_weather${WEATHER_ARGS}`) + approxTokens(`get_time${TIME_ARGS}`)) +
    (4 + approxTokens('Sunny, 21 °C')) + (4 + approxTokens('14:05 CET')) +
    approxTokens(JSON.stringify(WEATHER)) + approxTokens(JSON.stringify(TIME));
  assert.equal(second.usage.prompt_tokens, expected, 'the calls in the history and the definitions are counted');
  // tool_choice "required" forces calls after results too, as it forces the real model.
  const forced = await client.chat.completions.create({ model: 'gpt-4o-mini', tools: TOOLS, tool_choice: 'required',
    messages: [...messages, assistant, ...results] });
  assert.equal(forced.choices[0].finish_reason, 'tool_calls');

  const seen = [];
  const runnable = [
    { type: 'function', function: { ...WEATHER, parse: JSON.parse, function: (a) => { seen.push(['get_weather', a]); return { sky: 'sunny', temp: 21 }; } } },
    { type: 'function', function: { ...TIME, parse: JSON.parse, function: (a) => { seen.push(['get_time', a]); return '14:05'; } } },
  ];
  for (const stream of [false, true]) {
    seen.length = 0;
    const runner = client.chat.completions.runTools({ model: 'gpt-4o-mini', messages, tools: runnable, stream });
    const content = await runner.finalContent();
    assert.equal(content, 'Tool result: {"sky":"sunny","temp":21}; 14:05', `stream ${stream}`);
    assert.deepEqual(seen, [['get_weather', { city: 'mock', unit: 'celsius' }], ['get_time', { tz: 'mock' }]]);
    assert.deepEqual(runner.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'tool', 'assistant']);
    const usage = await runner.totalUsage();
    assert.ok(usage.prompt_tokens > 0 || stream, 'usage summed over both calls');
  }
});

test('tools: the stream — call starts with id, type, name and "" arguments, then argument fragments; the SDK assembles the same answer', T, async () => {
  const body = ask('Weather? [mock:tool_calls=2] [mock:created=1700000000]', { tool_choice: 'required' });
  const whole = await client.chat.completions.create(body);
  const r = await stream(mock.port, { body: { ...body, stream: true, stream_options: { include_usage: true } }, headers: auth });
  assert.equal(r.raw, sseBytes(expectedChatStreamTexts({ ...body, stream: true, stream_options: { include_usage: true } })));
  const chunks = sseChunks(r.raw);
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: null,
    tool_calls: [{ index: 0, id: whole.choices[0].message.tool_calls[0].id, type: 'function', function: { name: 'get_weather', arguments: '' } }],
    refusal: null });
  const deltas = chunks.slice(1, -2).map((c) => c.choices[0].delta);
  const starts = deltas.filter((d) => d.tool_calls[0].id !== undefined);
  assert.deepEqual(starts, [{ tool_calls: [{ index: 1, id: whole.choices[0].message.tool_calls[1].id, type: 'function',
    function: { name: 'get_time', arguments: '' } }] }]);
  for (const d of deltas.filter((x) => x.tool_calls[0].id === undefined)) {
    assert.deepEqual(Object.keys(d.tool_calls[0]), ['index', 'function']);
    assert.deepEqual(Object.keys(d.tool_calls[0].function), ['arguments']);
  }
  const args = [0, 1].map((i) => deltas.filter((d) => d.tool_calls[0].index === i).map((d) => d.tool_calls[0].function.arguments).join(''));
  assert.deepEqual(args, [WEATHER_ARGS, TIME_ARGS]);
  assert.deepEqual(chunks.at(-2).choices[0], { index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' });
  assert.deepEqual(chunks.at(-1).choices, []);
  assert.deepEqual(chunks.at(-1).usage, whole.usage);

  const done = [];
  const s = client.chat.completions.stream({ ...body, stream_options: { include_usage: true } });
  s.on('tool_calls.function.arguments.done', (e) => done.push([e.name, e.arguments]));
  const final = await s.finalChatCompletion();
  assert.deepEqual(done, [['get_weather', WEATHER_ARGS], ['get_time', TIME_ARGS]]);
  assert.equal(final.id, whole.id);
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(final.choices[0].message.tool_calls, whole.choices[0].message.tool_calls);
  assert.deepEqual(final.usage, whole.usage);
});

test('legacy functions: function_call answered with message.function_call, finish_reason "function_call", streamed likewise', T, async () => {
  const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Weather?' }], functions: [WEATHER],
    function_call: { name: 'get_weather' } };
  const c = await client.chat.completions.create(body);
  assert.equal(c.choices[0].finish_reason, 'function_call');
  assert.deepEqual(c.choices[0].message.function_call, { name: 'get_weather', arguments: WEATHER_ARGS });
  assert.equal(c.choices[0].message.content, null);
  const r = await stream(mock.port, { body: { ...body, stream: true }, headers: auth });
  const chunks = sseChunks(r.raw);
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: null, function_call: { name: 'get_weather', arguments: '' }, refusal: null });
  assert.equal(chunks.slice(1, -1).map((x) => x.choices[0].delta.function_call.arguments).join(''), WEATHER_ARGS);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'function_call');
  const after = await client.chat.completions.create({ model: 'gpt-4o-mini', functions: [WEATHER],
    messages: [...body.messages, c.choices[0].message, { role: 'function', name: 'get_weather', content: 'Rain' }] });
  assert.equal(after.choices[0].message.content, 'Tool result: Rain');
});

test('tools: OpenAI\'s 400s for bad definitions, choices and tool message sequences', T, async () => {
  const u = { role: 'user', content: 'x' };
  const call = { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } };
  const cases = [
    [{ tool_choice: 'auto' }, 'tool_choice', null, "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified."],
    [{ parallel_tool_calls: true }, 'parallel_tool_calls', null, "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are specified."],
    [{ tools: TOOLS, tool_choice: 'bogus' }, 'tool_choice', 'invalid_value', "Invalid value: 'bogus'. Supported values are: 'none', 'auto', and 'required'."],
    [{ tools: TOOLS, tool_choice: 7 }, 'tool_choice', 'invalid_type', "Invalid type for 'tool_choice': expected one of one of 'none', 'auto', or 'required' or object, but got an integer instead."],
    [{ tools: TOOLS, tool_choice: { type: 'function', function: {} } }, 'tool_choice.function.name', 'missing_required_parameter', "Missing required parameter: 'tool_choice.function.name'."],
    [{ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } }, 'function_call', null, "Invalid value for 'function_call': no function named 'nope' was specified in the 'functions' parameter."],
    [{ tools: [] }, 'tools', 'empty_array', "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array instead."],
    [{ tools: 'x' }, 'tools', 'invalid_type', "Invalid type for 'tools': expected an array of objects, but got a string instead."],
    [{ tools: [{ type: 'function' }] }, 'tools[0].function', 'missing_required_parameter', "Missing required parameter: 'tools[0].function'."],
    [{ tools: [{ type: 'function', function: { parameters: {} } }] }, 'tools[0].function.name', 'missing_required_parameter', "Missing required parameter: 'tools[0].function.name'."],
    [{ tools: [{ type: 'function', function: { name: '' } }] }, 'tools[0].function.name', 'empty_string', "Invalid 'tools[0].function.name': empty string. Expected a string with minimum length 1, but got an empty string instead."],
    [{ tools: [{ type: 'function', function: { name: 'get weather' } }] }, 'tools[0].function.name', 'invalid_value', "Invalid 'tools[0].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."],
    [{ tools: [{ type: 'function', function: { name: 'f'.repeat(65) } }] }, 'tools[0].function.name', 'string_above_max_length', "Invalid 'tools[0].function.name': string too long. Expected a string with maximum length 64, but got a string with length 65 instead."],
    [{ tools: [{ type: 'function', function: { name: 'f', parameters: 'x' } }] }, 'tools[0].function.parameters', 'invalid_type', "Invalid type for 'tools[0].function.parameters': expected an object, but got a string instead."],
    [{ tools: [{ type: 'retrieval' }] }, 'tools[0].type', 'invalid_value', "Invalid value: 'retrieval'. Supported values are: 'function' and 'custom'."],
    [{ tools: [{ type: 'function', function: { ...TIME, strict: true } }] }, 'tools[0].function.parameters', 'invalid_function_parameters', "Invalid schema for function 'get_time': In context=(), 'additionalProperties' is required to be supplied and to be false."],
    [{ tools: [{ type: 'function', function: { ...WEATHER, strict: true } }] }, 'tools[0].function.parameters', 'invalid_function_parameters', "Invalid schema for function 'get_weather': In context=(), 'required' is required to be supplied and to be an array including every key in properties. Missing 'days'."],
    [{ messages: [u, { role: 'assistant', tool_calls: [call] }] }, 'messages.[1].role', null, "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: call_1"],
    [{ messages: [u, { role: 'assistant', tool_calls: [call, { ...call, id: 'call_2' }] }, { role: 'tool', tool_call_id: 'call_2', content: 'r' }, u] }, 'messages.[1].role', null, "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: call_1"],
    [{ messages: [u, { role: 'tool', tool_call_id: 'call_1', content: 'r' }] }, 'messages.[1].role', null, "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."],
    [{ messages: [u, { role: 'assistant', tool_calls: [call] }, { role: 'tool', tool_call_id: 'call_9', content: 'r' }] }, 'messages.[2].tool_call_id', null, "Invalid parameter: 'tool_call_id' of 'call_9' not found in 'tool_calls' of previous message."],
    [{ messages: [u, { role: 'assistant', tool_calls: [call] }, { role: 'tool', content: 'r' }] }, 'messages[2].tool_call_id', 'missing_required_parameter', "Missing required parameter: 'messages[2].tool_call_id'."],
    [{ messages: [u, { role: 'assistant', content: null }] }, 'messages.[1].content', null, "Invalid value for 'content': expected a string, got null."],
    [{ messages: [u, { role: 'assistant', tool_calls: [] }] }, 'messages[1].tool_calls', 'empty_array', "Invalid 'messages[1].tool_calls': empty array. Expected an array with minimum length 1, but got an empty array instead."],
    [{ messages: [u, { role: 'assistant', tool_calls: [{ ...call, function: { name: 'f', arguments: {} } }] }] }, 'messages[1].tool_calls[0].function.arguments', 'invalid_type', "Invalid type for 'messages[1].tool_calls[0].function.arguments': expected a string, but got an object instead."],
    [{ messages: [{ role: 'bogus', content: 'x' }] }, 'messages[0].role', 'invalid_value', "Invalid value: 'bogus'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."],
    [{ functions: [WEATHER], function_call: { name: 'nope' } }, 'function_call', null, "Invalid value for 'function_call': no function named 'nope' was specified in the 'functions' parameter."],
    [{ functions: [{ parameters: {} }] }, 'functions[0].name', 'missing_required_parameter', "Missing required parameter: 'functions[0].name'."],
  ];
  for (const [extra, param, code, message] of cases) {
    const r = await post('/v1/chat/completions', { ...msg('x'), ...extra });
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.deepEqual(r.json.error, { message, type: 'invalid_request_error', param, code }, JSON.stringify(extra));
  }
  // The same through the SDK: a typed BadRequestError.
  await assert.rejects(client.chat.completions.create({ ...msg('x'), tool_choice: 'required' }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'tool_choice' && /only allowed when 'tools' are specified/.test(e.message));
  // A valid round trip's history passes: the ids answered, in any order, content null beside tool_calls.
  const ok = await post('/v1/chat/completions', { ...msg('x'), tools: TOOLS, messages: [u,
    { role: 'assistant', content: null, tool_calls: [call, { ...call, id: 'call_2' }] },
    { role: 'tool', tool_call_id: 'call_2', content: 'b' }, { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'a' }] }] });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.choices[0].message.content, 'Tool result: b; a');
  const bad = await post('/v1/chat/completions', ask('[mock:tool_call=nope]'));
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /tool_call names no function/);
});
