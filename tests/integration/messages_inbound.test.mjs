// Inbound Anthropic Messages API with the official `@anthropic-ai/sdk`: the echo provider
// answers /v1/messages (whole and streamed, usage and cost recorded as for chat), and
// /v1/messages/count_tokens is counted by an Anthropic provider (its mock), by the echo provider
// (words), or refused with an Anthropic-shaped 400 for a provider without token counting. A
// count is authenticated and rate-limited like a call, but is not billed and leaves no usage row.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';

import { startStack, postJson, request, sleep, waitUntil } from './harness.mjs';
import { AnthropicMock, DEFAULT_API_KEY as ANTHROPIC_KEY } from '../mock/anthropic_mock.mjs';

const T = { timeout: 30_000 };
const RPM = 3;
let s;
let anthropicMock;
let sdk;

/** An SDK client of the gateway: the key as x-api-key (apiKey) or as a bearer token (authToken). */
function client(key, { bearer = false, headers = {} } = {}) {
  return new Anthropic({ ...(bearer ? { apiKey: null, authToken: key } : { apiKey: key }),
    baseURL: s.gw.baseUrl.replace(/\/v1$/, ''), maxRetries: 0, timeout: 15_000,
    defaultHeaders: headers });
}

before(async () => {
  anthropicMock = new AnthropicMock();
  await anthropicMock.start();
  s = await startStack({
    keys: { main: {}, limited: { rpm: RPM } },
    config: (mockUrl) => ({
      providers: [
        { name: 'mock', type: 'openai', base_url: mockUrl, api_key: { raw: '${MOCK_KEY}' } },
        { name: 'claude', type: 'anthropic', base_url: anthropicMock.baseUrl, api_key: ANTHROPIC_KEY },
        { name: 'local', type: 'echo' },
      ],
      models: [
        { name: 'gpt-4o-mini', provider: 'mock', upstream_model: 'gpt-4o-mini-2024-07-18' },
        { name: 'claude-sonnet-4', provider: 'claude', upstream_model: 'claude-sonnet-4-20250514' },
        { name: 'echo-chat', provider: 'local' },
      ],
      aliases: [{ alias: 'sonnet', model: 'claude-sonnet-4' }],
      // $1 / $2 per million input / output tokens (components as a YAML flow sequence).
      prices: [{ model: 'echo-chat', components: { raw: '[{direction: input, unit: 1m_tokens, price: "1"}, '
        + '{direction: output, unit: 1m_tokens, price: "2"}]' } }],
    }),
  });
  sdk = client(s.key);
});

after(async () => {
  await s?.close();
  await anthropicMock?.stop();
});

/** Waits (bounded) until `count` usage rows of x-request-id `rid` are written; returns them. */
function rowsFor(rid, count = 1) {
  return waitUntil(async () => {
    const rows = await s.gw.usageFor(rid);
    return rows.length >= count ? rows : null;
  }, 10_000, `${count} usage row(s) for ${rid}`);
}

test('echo /v1/messages: a whole Message echoing the last user turn, usage and cost recorded', T, async () => {
  const { data: m, response } = await sdk.messages.create({
    model: 'echo-chat', max_tokens: 64, system: 'Be brief.',
    messages: [{ role: 'user', content: 'The quick brown fox' }],
  }, { headers: { 'x-request-id': 'echo-msg-json' } }).withResponse();
  assert.equal(m.type, 'message');
  assert.match(m.id, /^msg_/);
  assert.equal(m.role, 'assistant');
  assert.equal(m.model, 'echo-chat');
  assert.deepEqual(m.content, [{ type: 'text', text: 'The quick brown fox' }]);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.stop_sequence, null);
  // Echo counts words, at least one per message: "Be brief." (2) + the user turn (4).
  assert.equal(m.usage.input_tokens, 6);
  assert.equal(m.usage.output_tokens, 4);
  assert.equal(response.headers.get('x-llmgw-cost-status'), 'exact');
  assert.equal(Number(response.headers.get('x-llmgw-cost-usd')), (6 * 1 + 4 * 2) / 1e6);
  const [row] = await rowsFor('echo-msg-json');
  assert.equal(row.endpoint, 'messages');
  assert.equal(row.provider, 'local');
  assert.equal(row.status, 200);
  assert.equal(Number(row.prompt_tokens), 6);
  assert.equal(Number(row.completion_tokens), 4);
  assert.equal(Number(row.cost_usd), (6 * 1 + 4 * 2) / 1e6);
  assert.equal(s.mock.recorded().length, 0, 'echo contacts no upstream');
});

test('echo /v1/messages: a stream with the same text and usage as the whole answer', T, async () => {
  const params = { model: 'echo-chat', max_tokens: 64,
    messages: [{ role: 'user', content: 'Streaming echo through the Messages API' }] };
  const whole = await sdk.messages.create(params);
  const stream = sdk.messages.stream(params, { headers: { 'x-request-id': 'echo-msg-stream' } });
  const events = [];
  let text = '';
  stream.on('streamEvent', (e) => events.push(e.type));
  stream.on('text', (t) => { text += t; });
  const final = await stream.finalMessage();
  assert.equal(events[0], 'message_start');
  assert.equal(events.at(-1), 'message_stop');
  assert.ok(events.includes('content_block_delta'), events.join(','));
  assert.equal(text, whole.content[0].text);
  assert.deepEqual(final.content, whole.content);
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(final.usage.input_tokens, whole.usage.input_tokens);
  assert.equal(final.usage.output_tokens, whole.usage.output_tokens);
  const [row] = await rowsFor('echo-msg-stream');
  assert.equal(row.endpoint, 'messages');
  assert.equal(Number(row.stream), 1);
  assert.equal(Number(row.prompt_tokens), whole.usage.input_tokens);
  assert.equal(Number(row.completion_tokens), whole.usage.output_tokens);
});

test('countTokens → anthropic provider: forwarded to its count_tokens route, model renamed, not billed', T, async () => {
  const params = {
    model: 'sonnet', system: 'You are terse.',
    messages: [{ role: 'user', content: 'How many tokens is this sentence?' }],
    tools: [{ name: 'get_weather', description: 'Weather for a city',
      input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
  };
  anthropicMock.clearRequests();
  const { data, response } = await sdk.messages.countTokens(params, {
    headers: { 'x-request-id': 'count-claude' } }).withResponse();
  const direct = await new Anthropic({ apiKey: ANTHROPIC_KEY, baseURL: anthropicMock.baseUrl, maxRetries: 0 })
    .messages.countTokens({ ...params, model: 'claude-sonnet-4-20250514' });
  assert.ok(data.input_tokens > 0, JSON.stringify(data));
  assert.deepEqual(data, direct, 'the provider\'s own count, passed through');
  assert.match(response.headers.get('x-llmgw-cost-usd') ?? '', /^0(\.0+)?$/, 'a count costs nothing');
  assert.equal(response.headers.get('x-llmgw-cost-status'), 'exact');
  const [sent] = anthropicMock.recorded();
  assert.equal(sent.method, 'POST');
  assert.equal(sent.path, '/v1/messages/count_tokens');
  assert.equal(sent.api_key_ok, true, 'the gateway\'s provider key, not the client\'s');
  assert.equal(sent.body.model, 'claude-sonnet-4-20250514');
  assert.deepEqual({ ...sent.body, model: params.model }, params, 'the rest of the body as sent');
  // The provider's errors come back in Anthropic's shape.
  await assert.rejects(sdk.messages.countTokens({ ...params, max_tokens: 10 }), (e) =>
    e instanceof Anthropic.BadRequestError && e.error?.type === 'error' &&
    e.error.error.type === 'invalid_request_error' && /max_tokens/.test(e.error.error.message));
  // Not billed: no usage row (the call after it is recorded; the count before it is not).
  await sdk.messages.create({ model: 'echo-chat', max_tokens: 8, messages: [{ role: 'user', content: 'marker' }] },
    { headers: { 'x-request-id': 'count-marker' } });
  await rowsFor('count-marker');
  assert.deepEqual(await s.gw.usageFor('count-claude'), []);
});

test('countTokens → echo: the echo provider\'s own count (words), no usage row', T, async () => {
  const { data } = await sdk.messages.countTokens({
    model: 'echo-chat', system: 'Be brief.',
    messages: [
      { role: 'user', content: 'one two three' },
      { role: 'assistant', content: 'four five' },
      { role: 'user', content: [{ type: 'text', text: 'six seven eight nine' }] },
    ],
  }, { headers: { 'x-request-id': 'count-echo' } }).withResponse();
  assert.deepEqual(data, { input_tokens: 2 + 3 + 2 + 4 });
  await sleep(300);
  assert.deepEqual(await s.gw.usageFor('count-echo'), []);
});

test('countTokens → an OpenAI provider: an Anthropic-shaped 400 saying counting is not available', T, async () => {
  s.mock.clearRequests();
  await assert.rejects(
    sdk.messages.countTokens({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    (e) => {
      assert.ok(e instanceof Anthropic.BadRequestError, String(e));
      assert.equal(e.status, 400);
      assert.equal(e.error.type, 'error');
      assert.equal(e.error.error.type, 'invalid_request_error');
      assert.match(e.error.error.message, /Token counting is not available for the model `gpt-4o-mini`/);
      assert.match(e.error.error.message, /provider `mock` \(type openai\)/);
      return true;
    });
  assert.equal(s.mock.recorded().length, 0, 'nothing sent to the provider');
});

test('countTokens: authenticated like /v1/messages (x-api-key or Bearer), Anthropic-shaped errors', T, async () => {
  const body = { model: 'echo-chat', messages: [{ role: 'user', content: 'hello there' }] };
  assert.deepEqual(await client(s.key, { bearer: true }).messages.countTokens(body), { input_tokens: 2 });
  await assert.rejects(client('sk-llmgw-wrong').messages.countTokens(body), (e) =>
    e instanceof Anthropic.AuthenticationError && e.error.error.type === 'authentication_error');
  const none = await request(s.gw.port, { method: 'POST', path: '/v1/messages/count_tokens',
    headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(none.status, 401);
  assert.equal(JSON.parse(none.text).type, 'error');
  await assert.rejects(sdk.messages.countTokens({ ...body, model: 'no-such-model' }), (e) =>
    e instanceof Anthropic.NotFoundError && e.error.error.type === 'not_found_error');
  await assert.rejects(sdk.messages.countTokens({ model: 'echo-chat' }), (e) =>
    e instanceof Anthropic.BadRequestError && /^messages: Field required/.test(e.error.error.message));
  const get = await request(s.gw.port, { method: 'GET', path: '/v1/messages/count_tokens',
    headers: { 'x-api-key': s.key } });
  assert.equal(get.status, 405);
  assert.equal(JSON.parse(get.text).error.type, 'invalid_request_error');
});

test('countTokens counts against the key\'s request rate limit', T, async () => {
  const limited = client(s.gw.keys.limited.key);
  const body = { model: 'echo-chat', messages: [{ role: 'user', content: 'rate me' }] };
  for (let i = 0; i < RPM; i++) assert.deepEqual(await limited.messages.countTokens(body), { input_tokens: 2 });
  await assert.rejects(limited.messages.countTokens(body), (e) =>
    e instanceof Anthropic.RateLimitError && e.error.error.type === 'rate_limit_error' &&
    /requests/.test(e.error.error.message));
  // The same window refuses a Messages call too: counts are requests like any other.
  const r = await postJson(s.gw.port, s.gw.keys.limited.key, '/v1/messages',
    { model: 'echo-chat', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r.status, 429, r.text);
});
