// Self-test of the mock Anthropic upstream, driven by Anthropic's official SDK
// (@anthropic-ai/sdk): if the SDK decodes the mock's JSON, SSE framing and error shapes into
// its own types, tests built on the mock exercise what real clients see. No gateway needed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Anthropic, {
  APIError, AuthenticationError, BadRequestError, ContentTooLargeError, InternalServerError, NotFoundError,
  OverloadedError, PermissionDeniedError, RateLimitError,
} from '@anthropic-ai/sdk';

import { AnthropicMock, DEFAULT_MODELS, THINKING_TEXT, countInputTokens, parseDirectives } from './anthropic_mock.mjs';
import { DEFAULT_REPLY } from './openai_mock.mjs';
import { request, spawnMockProgram, stream } from '../integration/harness.mjs';

const T = { timeout: 20_000 };
const MODEL = 'claude-sonnet-4-20250514';
let mock;
let client;

before(async () => {
  mock = new AnthropicMock();
  await mock.start();
  client = new Anthropic({ apiKey: mock.apiKey, baseURL: mock.baseUrl, maxRetries: 0 });
});

after(async () => {
  await mock?.stop();
});

const params = (content, extra = {}) => ({ model: MODEL, max_tokens: 1024, messages: [{ role: 'user', content }], ...extra });
const rawHeaders = () => ({ 'x-api-key': mock.apiKey, 'anthropic-version': '2023-06-01' });
const rawPost = (p, body, headers = rawHeaders()) => request(mock.port, { method: 'POST', path: p, headers, body });

/** Parses an SSE text strictly: every event is exactly `event: NAME\ndata: JSON\n\n`. */
function strictEvents(raw) {
  assert.ok(raw.endsWith('\n\n'), 'the stream ends with a complete event');
  return raw.slice(0, -2).split('\n\n').map((e) => {
    const m = /^event: ([a-z_]+)\ndata: (\{.*\})$/.exec(e);
    assert.ok(m, `malformed SSE event: ${JSON.stringify(e)}`);
    const data = JSON.parse(m[2]);
    assert.equal(data.type, m[1], 'the event name matches the data type');
    return data;
  });
}

const WEATHER = {
  name: 'get_weather', description: 'Current weather of a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'unit'] },
};
const TIME = { name: 'get_time', description: 'Local time', input_schema: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] } };

test('messages.create: the Message shape, request-id, key as Bearer (the SDK) and as x-api-key', T, async () => {
  mock.clearRequests();
  const { data: msg, response } = await client.messages.create(params('hello')).withResponse();
  assert.match(response.headers.get('request-id'), /^req_01[0-9A-Za-z]{22}$/);
  assert.equal(msg._request_id, response.headers.get('request-id'));
  assert.deepEqual(Object.keys(msg).filter((k) => k !== '_request_id'),
    ['id', 'type', 'role', 'model', 'content', 'stop_reason', 'stop_sequence', 'usage']);
  assert.match(msg.id, /^msg_01[0-9A-Za-z]{22}$/);
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.model, MODEL);
  assert.deepEqual(msg.content, [{ type: 'text', text: DEFAULT_REPLY }]);
  assert.equal(msg.stop_reason, 'end_turn');
  assert.equal(msg.stop_sequence, null);
  assert.deepEqual(msg.usage, { input_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 0,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 }, output_tokens: 9, service_tier: 'standard' });
  const [rec] = mock.recorded();
  assert.equal(rec.api_key_via, 'bearer');
  assert.equal(rec.api_key_ok, true);
  assert.equal(rec.headers.authorization, 'Bearer [redacted]');
  assert.ok(!JSON.stringify(rec).includes(mock.apiKey), 'the key is never recorded');
  assert.match(rec.headers['anthropic-version'], /^\d{4}-\d{2}-\d{2}$/);
  assert.deepEqual(rec.body, params('hello'));
  assert.equal(rec.status, 200);
  assert.equal(rec.response_request_id, msg._request_id);

  const raw = await rawPost('/v1/messages', params('hello'));
  assert.equal(raw.status, 200);
  assert.equal(raw.headers['content-type'], 'application/json');
  assert.ok(raw.text.startsWith('{"id":"msg_01'), 'compact JSON, id first');
  assert.equal(mock.recorded()[1].api_key_via, 'x-api-key');
  assert.equal(mock.recorded()[1].headers['x-api-key'], '[redacted]');
});

test('SSE framing: event names, exact order, ping after the first block start, cumulative message_delta usage', T, async () => {
  const r = await stream(mock.port, { path: '/v1/messages', headers: rawHeaders(), body: params('s [mock:chunks=3]', { stream: true }) });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/event-stream; charset=utf-8');
  assert.match(r.headers['request-id'], /^req_01/);
  assert.ok(r.complete);
  const events = strictEvents(r.raw);
  assert.deepEqual(events.map((e) => e.type), ['message_start', 'content_block_start', 'ping', 'content_block_delta',
    'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
  const start = events[0].message;
  assert.deepEqual(start.content, []);
  assert.equal(start.stop_reason, null);
  assert.equal(start.usage.output_tokens, 1);
  assert.deepEqual(events[1], { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
  assert.deepEqual(events.slice(3, 6).map((e) => e.delta), [{ type: 'text_delta', text: 'tok0' },
    { type: 'text_delta', text: ' tok1' }, { type: 'text_delta', text: ' tok2' }]);
  assert.deepEqual(events[6], { type: 'content_block_stop', index: 0 });
  assert.deepEqual(events[7].delta, { stop_reason: 'end_turn', stop_sequence: null });
  assert.deepEqual(events[7].usage, { input_tokens: start.usage.input_tokens, cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0, output_tokens: 3 });
});

test('messages.stream(): text events and finalMessage() equal the non-streamed Message', T, async () => {
  const p = params('same answer');
  const plain = await client.messages.create(p);
  const s = client.messages.stream(p);
  const texts = [];
  s.on('text', (t) => texts.push(t));
  const final = await s.finalMessage();
  assert.equal(texts.join(''), DEFAULT_REPLY);
  assert.equal(texts.length, 9);
  // The SDK's snapshot adds parsed_output and stop_details (undefined: the mock sends none).
  const keys = ['id', 'type', 'role', 'model', 'content', 'stop_reason', 'stop_sequence', 'usage'];
  const pick = (m) => Object.fromEntries(keys.map((k) => [k, m[k]]));
  assert.deepEqual(pick(final), pick(plain));
  assert.equal(final.stop_details, undefined);
  // create({stream: true}) yields the raw events, ping filtered out by the SDK.
  const types = [];
  for await (const ev of await client.messages.create({ ...p, stream: true })) types.push(ev.type);
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
  assert.ok(!types.includes('ping'));
});

test('tool use round trip: tool_use from the schema, parallel calls, tool_choice, tool_result answered', T, async () => {
  const first = await client.messages.create(params('weather in Paris? [mock:tool_use]', { tools: [WEATHER, TIME] }));
  assert.equal(first.stop_reason, 'tool_use');
  assert.equal(first.content[0].type, 'text');
  const use = first.content[1];
  assert.equal(use.type, 'tool_use');
  assert.match(use.id, /^toolu_01[0-9A-Za-z]{22}$/);
  assert.equal(use.name, 'get_weather');
  assert.deepEqual(use.input, { city: 'mock', unit: 'celsius' });

  const second = await client.messages.create({ model: MODEL, max_tokens: 1024, tools: [WEATHER, TIME], messages: [
    { role: 'user', content: 'weather in Paris? [mock:tool_use]' },
    { role: 'assistant', content: first.content },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '18 degrees, sunny' }] },
  ] });
  assert.equal(second.stop_reason, 'end_turn');
  assert.deepEqual(second.content, [{ type: 'text', text: 'Tool result: 18 degrees, sunny' }]);

  // A tool_use without its tool_result is refused, as the API does.
  await assert.rejects(client.messages.create({ model: MODEL, max_tokens: 10, tools: [WEATHER], messages: [
    { role: 'user', content: 'x' }, { role: 'assistant', content: [use] }, { role: 'user', content: 'no result' }] }),
  (e) => e instanceof BadRequestError && /tool_result/.test(e.message));

  const parallel = client.messages.stream(params('both [mock:parallel_tools] [mock:tool_input={"city":"Oslo","tz":"CET"}]', { tools: [WEATHER, TIME] }));
  const partial = [];
  parallel.on('inputJson', (delta) => partial.push(delta));
  const pm = await parallel.finalMessage();
  assert.deepEqual(pm.content.filter((b) => b.type === 'tool_use').map((b) => [b.name, b.input]),
    [['get_weather', { city: 'Oslo', tz: 'CET' }], ['get_time', { city: 'Oslo', tz: 'CET' }]]);
  assert.ok(partial.length >= 4, 'input_json_delta pieces');
  assert.equal(pm.stop_reason, 'tool_use');

  const single = await client.messages.create(params('[mock:parallel_tools]',
    { tools: [WEATHER, TIME], tool_choice: { type: 'auto', disable_parallel_tool_use: true } }));
  assert.equal(single.content.filter((b) => b.type === 'tool_use').length, 1);
  const forced = await client.messages.create(params('no marker', { tools: [WEATHER, TIME], tool_choice: { type: 'tool', name: 'get_time' } }));
  assert.deepEqual(forced.content.map((b) => b.type), ['tool_use'], 'a forced tool has no text before it');
  assert.equal(forced.content[0].name, 'get_time');
  const none = await client.messages.create(params('[mock:tool_use]', { tools: [WEATHER], tool_choice: { type: 'none' } }));
  assert.equal(none.stop_reason, 'end_turn');
});

test('extended thinking: thinking block with signature, thinking_delta and signature_delta in the stream', T, async () => {
  const p = params('think', { max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 } });
  const msg = await client.messages.create(p);
  assert.deepEqual(msg.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(msg.content[0].thinking, THINKING_TEXT);
  assert.match(msg.content[0].signature, /^Eq[A-Za-z0-9+/=]{80,}$/);
  const s = client.messages.stream(p);
  const thinking = [];
  const signatures = [];
  s.on('thinking', (delta) => thinking.push(delta));
  s.on('signature', (sig) => signatures.push(sig));
  const final = await s.finalMessage();
  assert.equal(thinking.join(''), THINKING_TEXT);
  assert.deepEqual(signatures, [msg.content[0].signature]);
  assert.deepEqual(final.content, msg.content);
  assert.equal(final.usage.output_tokens, msg.usage.output_tokens);
  for (const bad of [{ budget_tokens: 2048 }, { budget_tokens: 100 }]) {
    await assert.rejects(client.messages.create({ ...p, thinking: { type: 'enabled', ...bad } }), BadRequestError);
  }
  await assert.rejects(client.messages.create({ ...p, temperature: 0.5 }), /temperature/);
});

test('stop reasons: max_tokens and stop_sequence, streamed and not', T, async () => {
  const short = await client.messages.create(params('x', { max_tokens: 3 }));
  assert.equal(short.stop_reason, 'max_tokens');
  assert.equal(short.content[0].text, 'Hello! How');
  assert.equal(short.usage.output_tokens, 3);
  const seq = await client.messages.create(params('x', { stop_sequences: ['END', ' help'] }));
  assert.equal(seq.stop_reason, 'stop_sequence');
  assert.equal(seq.stop_sequence, ' help');
  assert.equal(seq.content[0].text, 'Hello! How can I');
  const streamed = await client.messages.stream(params('x', { stop_sequences: [' help'] })).finalMessage();
  assert.equal(streamed.stop_reason, 'stop_sequence');
  assert.equal(streamed.stop_sequence, ' help');
  assert.equal(streamed.content[0].text, 'Hello! How can I');
});

test('errors: each status decoded by the SDK into its typed class, with Anthropic\'s error shape', T, async () => {
  const expectError = async (promise, Class, status, type) => {
    const err = await promise.then(() => assert.fail('expected an error'), (e) => e);
    assert.ok(err instanceof Class, `${status}: got ${err?.constructor?.name}: ${err?.message}`);
    assert.equal(err.status, status);
    assert.equal(err.type, type);
    assert.equal(err.error.type, 'error');
    assert.equal(err.error.error.type, type);
    assert.match(err.error.request_id, /^req_01/);
    assert.equal(err.requestID, err.error.request_id);
    return err;
  };
  await expectError(client.messages.create({ model: MODEL, max_tokens: 10, messages: [] }), BadRequestError, 400, 'invalid_request_error');
  const wrong = new Anthropic({ apiKey: 'sk-ant-wrong', baseURL: mock.baseUrl, maxRetries: 0 });
  await expectError(wrong.messages.create(params('x')), AuthenticationError, 401, 'authentication_error');
  await expectError(client.messages.create(params('[mock:status=403]')), PermissionDeniedError, 403, 'permission_error');
  const nf = await expectError(client.messages.create({ ...params('x'), model: 'claude-9' }), NotFoundError, 404, 'not_found_error');
  assert.equal(nf.error.error.message, 'model: claude-9');
  await expectError(client.messages.create(params('[mock:status=413]')), ContentTooLargeError, 413, 'request_too_large');
  const rl = await expectError(client.messages.create(params('[mock:status=429] [mock:retry_after=7]')), RateLimitError, 429, 'rate_limit_error');
  assert.equal(rl.headers.get('retry-after'), '7');
  await expectError(client.messages.create(params('[mock:status=500]')), InternalServerError, 500, 'api_error');
  const ov = await expectError(client.messages.create(params('[mock:status=529]')), OverloadedError, 529, 'overloaded_error');
  assert.ok(ov instanceof InternalServerError);
  assert.equal(ov.error.error.message, 'Overloaded');
  // Errors are JSON before the stream starts, whatever `stream` says.
  await expectError(client.messages.stream(params('[mock:status=529]')).finalMessage(), OverloadedError, 529, 'overloaded_error');

  // The SDK retries 529 (x-should-retry: true); a retry reaches the mock again.
  mock.clearRequests();
  const retrying = new Anthropic({ apiKey: mock.apiKey, baseURL: mock.baseUrl, maxRetries: 1 });
  await assert.rejects(retrying.messages.create(params('[mock:status=529]')), OverloadedError);
  assert.equal(mock.recorded().length, 2);

  // A body over the size limit: 413 from the size check itself.
  const small = new AnthropicMock({ maxRequestBytes: 2000 });
  await small.start();
  try {
    const c = new Anthropic({ apiKey: small.apiKey, baseURL: small.baseUrl, maxRetries: 0 });
    await expectError(c.messages.create(params('x'.repeat(3000))), ContentTooLargeError, 413, 'request_too_large');
  } finally {
    await small.stop();
  }
});

test('request checks answered as invalid_request_error / authentication_error', T, async () => {
  const cases = [
    [{ max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }, /^model: Field required/],
    [{ model: MODEL, messages: [{ role: 'user', content: 'x' }] }, /^max_tokens: Field required/],
    [params('x', { max_tokens: 0 }), /greater than or equal to 1/],
    [params('x', { max_tokens: 100000 }), /maximum allowed number of output tokens/],
    [{ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] }, /alternate/],
    [{ model: MODEL, max_tokens: 5, messages: [{ role: 'system', content: 'a' }] }, /top-level `system`/],
    [params([{ type: 'image', source: { type: 'base64', media_type: 'image/bmp', data: 'AAAA' } }]), /media_type/],
    [params('x', { tool_choice: { type: 'any' } }), /requires tools/],
    [params('x', { temperature: 2 }), /temperature/],
    [params('x', { metadata: { user_id: 'u', other: 1 } }), /Extra inputs/],
    [params('x', { frequency_penalty: 1 }), /^frequency_penalty: Extra inputs are not permitted/],
    [params('x', { system: [{ type: 'text', text: 's', cache_control: { type: 'ephemeral', ttl: '2h' } }] }), /ttl/],
    [{ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y ' }] }, /trailing whitespace/],
    [params('[mock:bogus]'), /unknown mock directive/],
  ];
  for (const [body, re] of cases) {
    const r = await rawPost('/v1/messages', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.deepEqual(Object.keys(r.json), ['type', 'error', 'request_id']);
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.match(r.json.error.message, re);
  }
  const ok = await rawPost('/v1/messages', params([
    { type: 'text', text: 'look' },
    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
    { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } },
  ], { system: [{ type: 'text', text: 'be brief' }], temperature: 0.2, top_p: 0.9, top_k: 5, metadata: { user_id: 'u-1' } }));
  assert.equal(ok.status, 200);
  assert.equal(ok.json.usage.input_tokens, 2 + 1 + 2 * 1600, 'be brief + look + two images');
  const noVersion = await rawPost('/v1/messages', params('x'), { 'x-api-key': mock.apiKey });
  assert.equal(noVersion.status, 400);
  assert.match(noVersion.json.error.message, /anthropic-version/);
  const noKey = await rawPost('/v1/messages', params('x'), { 'anthropic-version': '2023-06-01' });
  assert.equal(noKey.status, 401);
  assert.equal(noKey.json.error.type, 'authentication_error');
  const route = await request(mock.port, { path: '/v1/complete', headers: rawHeaders() });
  assert.equal(route.status, 404);
  assert.equal(route.json.error.type, 'not_found_error');
  assert.throws(() => parseDirectives('[mock:bogus=1]'));
});

test('an error event mid-stream surfaces as an APIError in the SDK; no message_stop', T, async () => {
  const p = params('[mock:error_after=2]');
  const s = client.messages.stream(p);
  const texts = [];
  s.on('text', (t) => texts.push(t));
  const err = await s.finalMessage().then(() => assert.fail('expected an error'), (e) => e);
  assert.ok(err instanceof APIError, `${err}`);
  assert.equal(err.type, 'overloaded_error');
  assert.deepEqual(err.error, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
  assert.deepEqual(texts, ['Hello', '!']);
  const raw = await stream(mock.port, { path: '/v1/messages', headers: rawHeaders(), body: { ...p, stream: true } });
  const events = strictEvents(raw.raw);
  assert.deepEqual(events.map((e) => e.type), ['message_start', 'content_block_start', 'ping', 'content_block_delta',
    'content_block_delta', 'error']);
  assert.ok(raw.complete, 'the HTTP response ends cleanly after the error event');
  const typed = await client.messages.stream(params('[mock:error_after=0] [mock:error_type=api_error]')).finalMessage().catch((e) => e);
  assert.equal(typed.type, 'api_error');
});

test('a stream cut without message_stop, and a slow stream', T, async () => {
  const cut = await client.messages.stream(params('[mock:cut_after=4]')).finalMessage().catch((e) => e);
  assert.ok(cut instanceof Error, 'a connection cut fails the SDK stream');
  const rawCut = await stream(mock.port, { path: '/v1/messages', headers: rawHeaders(), body: params('[mock:cut_after=4]', { stream: true }) });
  assert.equal(rawCut.complete, false);
  assert.equal(strictEvents(rawCut.raw).length, 4);
  const ended = await client.messages.stream(params('[mock:end_after=5]')).finalMessage().catch((e) => e);
  assert.ok(ended instanceof Error && /stream ended without producing a Message/.test(ended.message), `${ended}`);

  const t0 = Date.now();
  const arrivals = [];
  const slow = client.messages.stream(params('[mock:chunks=4] [mock:chunk_delay_ms=80]'));
  slow.on('text', () => arrivals.push(Date.now()));
  await slow.finalMessage();
  assert.ok(Date.now() - t0 >= 8 * 80 - 20, 'nine events, 80 ms apart');
  assert.ok(arrivals.at(-1) - arrivals[0] >= 3 * 80 - 20, 'deltas arrive one by one');
});

test('prompt caching: cache writes then reads, 5m and 1h, identical when streamed; count_tokens', T, async () => {
  mock.clearCache();
  const big = 'x'.repeat(4800); // 1200 tokens
  const body = (ttl, text = 'q') => ({ model: MODEL, max_tokens: 100,
    system: [{ type: 'text', text: big, cache_control: { type: 'ephemeral', ...(ttl ? { ttl } : {}) } }],
    messages: [{ role: 'user', content: text }] });
  const first = await client.messages.create(body());
  assert.equal(first.usage.cache_creation_input_tokens, 1200);
  assert.deepEqual(first.usage.cache_creation, { ephemeral_5m_input_tokens: 1200, ephemeral_1h_input_tokens: 0 });
  assert.equal(first.usage.cache_read_input_tokens, 0);
  assert.equal(first.usage.input_tokens, 1);
  const again = await client.messages.stream(body(undefined, 'another question')).finalMessage();
  assert.equal(again.usage.cache_read_input_tokens, 1200);
  assert.equal(again.usage.cache_creation_input_tokens, 0);
  assert.equal(again.usage.input_tokens, 4);
  const hour = await client.messages.create({ ...body('1h'), system: [{ ...body('1h').system[0], text: `${big}y` }] });
  assert.deepEqual(hour.usage.cache_creation, { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 1201 });
  // Two breakpoints: the read covers the cached prefix, the write only what follows it.
  const two = { ...body(), messages: [{ role: 'user', content: [{ type: 'text', text: 'y'.repeat(400), cache_control: { type: 'ephemeral' } }, { type: 'text', text: 'tail' }] }] };
  const u = (await client.messages.create(two)).usage;
  assert.deepEqual([u.cache_read_input_tokens, u.cache_creation_input_tokens, u.input_tokens], [1200, 100, 1]);
  const counted = await client.messages.countTokens({ model: MODEL, system: two.system, messages: two.messages });
  assert.equal(counted.input_tokens, 1301);
  assert.equal(counted.input_tokens, countInputTokens(two));
  // Below the 1024-token minimum nothing is cached.
  const short = await client.messages.create({ ...body(), system: [{ type: 'text', text: 'short', cache_control: { type: 'ephemeral' } }] });
  assert.equal(short.usage.cache_creation_input_tokens, 0);
  // Limits: at most 4 breakpoints; 1h before 5m.
  const cc = { type: 'ephemeral' };
  await assert.rejects(client.messages.create(params(Array.from({ length: 5 }, (_, i) => ({ type: 'text', text: `t${i}`, cache_control: cc })))), /maximum of 4/);
  await assert.rejects(client.messages.create(params([{ type: 'text', text: 'a', cache_control: cc }, { type: 'text', text: 'b', cache_control: { ...cc, ttl: '1h' } }])), /1h/);
  await assert.rejects(client.messages.countTokens({ ...params('x') }), /max_tokens: Extra inputs/);
});

test('models.list with pagination, models.retrieve', T, async () => {
  const all = [];
  for await (const m of client.models.list({ limit: 2 })) all.push(m);
  assert.deepEqual(all.map((m) => m.id), DEFAULT_MODELS.map((m) => m.id));
  assert.deepEqual(Object.keys(all[0]), ['type', 'id', 'display_name', 'created_at']);
  const page = await client.models.list({ limit: 2 });
  assert.equal(page.has_more, true);
  assert.equal(page.first_id, DEFAULT_MODELS[0].id);
  assert.equal(page.last_id, DEFAULT_MODELS[1].id);
  const one = await client.models.retrieve(MODEL);
  assert.equal(one.display_name, 'Claude Sonnet 4');
  await assert.rejects(client.models.retrieve('claude-9'), NotFoundError);
});

test('recording and admin routes; runnable as a program', T, async () => {
  mock.clearRequests();
  await client.messages.create(params('rec'));
  const admin = await request(mock.port, { path: '/__mock/requests?min=1&timeout_ms=1000' });
  assert.equal(admin.json.length, 1);
  assert.equal(admin.json[0].path, '/v1/messages');
  assert.ok(admin.json[0].completed);
  assert.equal((await request(mock.port, { method: 'DELETE', path: '/__mock/requests' })).status, 204);
  assert.equal(mock.recorded().length, 0);

  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'anthropic_mock.mjs');
  const { line, stop } = await spawnMockProgram(file);
  try {
    assert.equal(line.event, 'listening');
    const c = new Anthropic({ apiKey: line.api_key, baseURL: line.base_url, maxRetries: 0 });
    const msg = await c.messages.create(params('cli'));
    assert.equal(msg.content[0].text, DEFAULT_REPLY);
  } finally {
    await stop();
  }
});

test('what Claude Code sends: beta members only with their anthropic-beta, adaptive thinking, omitted display, output_config, a mid-conversation system message', T, async () => {
  const betaHeaders = (...betas) => ({ ...rawHeaders(), 'anthropic-beta': betas.join(',') });
  const deferred = { ...TIME, defer_loading: true };
  const withoutBeta = [
    [params('x', { context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] } }), /^context_management: Extra inputs/],
    [params('x', { tools: [WEATHER, deferred] }), /^tools\.1\.defer_loading: Extra inputs/],
  ];
  for (const [body, re] of withoutBeta) {
    const r = await rawPost('/v1/messages', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(r.json.error.message, re);
  }
  const all = betaHeaders('claude-code-20250219', 'context-management-2025-06-27', 'advanced-tool-use-2025-11-20');
  const ok = await rawPost('/v1/messages', params('hello', {
    tools: [WEATHER, deferred], context_management: { edits: [{ type: 'clear_thinking_20251015', keep: 'all' }] },
    thinking: { type: 'adaptive', display: 'omitted' }, output_config: { effort: 'high' },
    metadata: { user_id: JSON.stringify({ device_id: 'd', session_id: 's' }) },
  }), all);
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.deepEqual(ok.json.content.map((b) => b.type), ['thinking', 'text']);
  assert.equal(ok.json.content[0].thinking, '', 'display omitted: no thinking text');
  assert.match(ok.json.content[0].signature, /^Eq/);
  for (const [body, re] of [
    [params('x', { thinking: { type: 'adaptive', budget_tokens: 2048 } }), /adaptive\.budget_tokens/],
    [params('x', { thinking: { type: 'enabled', budget_tokens: 1024, display: 'full' } }), /display/],
    [params('x', { output_config: { effort: 'extreme' } }), /output_config\.effort/],
    [params('x', { output_config: { speed: 'fast' } }), /output_config\.speed: Extra inputs/],
    [{ model: MODEL, max_tokens: 5, messages: [{ role: 'user', content: 'x' }, { role: 'system', content: [{ type: 'image', source: {} }] }] }, /text blocks only/],
  ]) {
    const r = await rawPost('/v1/messages', body, all);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match(r.json.error.message, re);
  }
  // A system message after the user turn: the directives are still read from that user turn.
  const sys = await client.messages.create({ model: MODEL, max_tokens: 64, messages: [
    { role: 'user', content: 'hi [mock:reply=from the user turn]' },
    { role: 'system', content: [{ type: 'text', text: 'Answer briefly.', cache_control: { type: 'ephemeral' } }] },
  ] });
  assert.equal(sys.content[0].text, 'from the user turn');
  // Between turns it does not break their alternation.
  const between = await client.messages.create({ model: MODEL, max_tokens: 64, messages: [
    { role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'system', content: 'Be terse.' },
    { role: 'user', content: 'c' },
  ] });
  assert.equal(between.stop_reason, 'end_turn');
  const s = client.messages.stream(params('hello', { max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 1024, display: 'omitted' } }));
  const thinking = [];
  s.on('thinking', (t) => thinking.push(t));
  const final = await s.finalMessage();
  assert.deepEqual(thinking, []);
  assert.equal(final.content[0].type, 'thinking');
  assert.match(final.content[0].signature, /^Eq/);
});
