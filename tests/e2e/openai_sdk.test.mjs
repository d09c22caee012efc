// End to end with the official `openai` npm SDK, unmodified, pointed at the gateway with only
// baseURL changed: chat, streaming (with and without include_usage), embeddings (the SDK asks
// for base64 by default), models.list, and the SDK's typed errors.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { startStack } from '../integration/harness.mjs';
import { embeddingVector, DEFAULT_REPLY } from '../mock/openai_mock.mjs';

const T = { timeout: 30_000 };
let s;
let client;
let restricted;

before(async () => {
  s = await startStack({ keys: { main: {}, restricted: { models: ['gpt-4o-mini'] } } });
  client = new OpenAI({ apiKey: s.key, baseURL: s.gw.baseUrl, maxRetries: 0, timeout: 15_000 });
  restricted = new OpenAI({ apiKey: s.gw.keys.restricted.key, baseURL: s.gw.baseUrl, maxRetries: 0, timeout: 15_000 });
});

after(async () => {
  await s?.close();
});

test('chat.completions.create', T, async () => {
  const c = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi [mock:prompt_tokens=17]' }],
  });
  assert.equal(c.object, 'chat.completion');
  assert.equal(c.model, 'gpt-4o-mini-2024-07-18');
  assert.equal(c.choices[0].message.content, DEFAULT_REPLY);
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.equal(c.usage.prompt_tokens, 17);
  assert.equal(c.usage.completion_tokens, 9);
  assert.equal(typeof c._request_id, 'string', 'the SDK exposes x-request-id as _request_id');
  assert.ok(c._request_id.length > 0);
  const rec = s.mock.recorded().at(-1);
  assert.equal(rec.headers.authorization, `Bearer ${s.mock.apiKey}`);
  assert.ok(!JSON.stringify(rec.raw_headers).includes(s.key), 'the gateway key must not reach the provider');
});

test('chat.completions.create through an alias, and with the echo provider', T, async () => {
  const a = await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'alias' }] });
  assert.equal(a.choices[0].message.content, DEFAULT_REPLY);
  const e = await client.chat.completions.create({ model: 'echo-chat', messages: [{ role: 'user', content: 'echo me' }] });
  assert.equal(e.object, 'chat.completion');
  assert.equal(typeof e.choices[0].message.content, 'string');
  assert.ok(e.usage.total_tokens > 0);
});

test('streaming with the async iterator, without include_usage', T, async () => {
  const st = await client.chat.completions.create({
    model: 'gpt-4o-mini', stream: true,
    messages: [{ role: 'user', content: 'stream [mock:chunks=7]' }],
  });
  const chunks = [];
  for await (const chunk of st) chunks.push(chunk);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, 'tok0 tok1 tok2 tok3 tok4 tok5 tok6');
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.ok(!('usage' in c), `no usage member without include_usage: ${JSON.stringify(c)}`);
    assert.ok(c.choices.length === 1, 'no usage-only chunk without include_usage');
  }
});

test('streaming with stream_options.include_usage', T, async () => {
  const st = await client.chat.completions.create({
    model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'stream [mock:chunks=3] [mock:prompt_tokens=23]' }],
  });
  const chunks = [];
  for await (const chunk of st) chunks.push(chunk);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.prompt_tokens, 23);
  assert.equal(last.usage.completion_tokens, 3);
  assert.equal(last.usage.total_tokens, 26);
});

test('streaming from the echo provider', T, async () => {
  const st = await client.chat.completions.create({
    model: 'echo-chat', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'echo stream' }],
  });
  const chunks = [];
  for await (const chunk of st) chunks.push(chunk);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.ok(text.length > 0);
  assert.ok(chunks.at(-1).usage.total_tokens > 0);
});

test('embeddings.create (SDK default base64 decoding) and explicit float', T, async () => {
  const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['hello', 'world'], dimensions: 8 });
  assert.equal(e.object, 'list');
  assert.equal(e.data.length, 2);
  const expected = Array.from(embeddingVector('text-embedding-3-small', 'hello', 8));
  assert.deepEqual(Array.from(e.data[0].embedding), expected);
  assert.equal(e.usage.prompt_tokens, 4);
  const f = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hello', dimensions: 8,
    encoding_format: 'float' });
  assert.deepEqual(f.data[0].embedding, expected);
  // The echo provider too: what the SDK decodes by default must equal the float answer.
  const echoFloat = await client.embeddings.create({ model: 'echo-embed', input: 'local vector', encoding_format: 'float' });
  const echo = await client.embeddings.create({ model: 'echo-embed', input: 'local vector' });
  assert.ok(echoFloat.usage.prompt_tokens > 0);
  assert.equal(echo.data[0].embedding.length, echoFloat.data[0].embedding.length,
    'SDK-decoded echo embedding (encoding_format base64 sent by default) has the wrong length');
  echo.data[0].embedding.forEach((x, i) => {
    assert.ok(Math.abs(x - echoFloat.data[0].embedding[i]) < 1e-6,
      `echo embedding component ${i}: SDK default decoding gives ${x}, float gives ${echoFloat.data[0].embedding[i]}`);
  });
});

test('models.list', T, async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids.sort(), ['echo-chat', 'echo-embed', 'fast', 'gpt-4o', 'gpt-4o-mini', 'quick-echo',
    'text-embedding-3-small'].sort());
  const rids = [];
  for await (const m of restricted.models.list()) rids.push(m.id);
  assert.ok(rids.includes('gpt-4o-mini'));
  assert.ok(!rids.includes('gpt-4o'));
});

async function rejectsWith(promise, Klass, status) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof Klass, `expected ${Klass.name}, got ${err?.constructor?.name}: ${err?.message}`);
    assert.equal(err.status, status);
    assert.equal(typeof err.error?.message, 'string', 'the OpenAI error body is parsed');
    return true;
  });
}

test('typed errors: 401 AuthenticationError', T, async () => {
  const bad = new OpenAI({ apiKey: 'sk-llmgw-not-a-real-key', baseURL: s.gw.baseUrl, maxRetries: 0 });
  await rejectsWith(bad.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
    OpenAI.AuthenticationError, 401);
  try {
    await bad.models.list();
    assert.fail('models.list with a bad key must fail');
  } catch (err) {
    assert.ok(err instanceof OpenAI.AuthenticationError, String(err));
    assert.equal(err.code, 'invalid_api_key');
  }
});

test('typed errors: 403 PermissionDeniedError', T, async () => {
  await rejectsWith(restricted.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
    OpenAI.PermissionDeniedError, 403);
});

test('typed errors: 404 NotFoundError', T, async () => {
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError, String(err));
      assert.equal(err.status, 404);
      assert.equal(err.code, 'model_not_found');
      return true;
    });
});

test('typed errors: 400 BadRequestError', T, async () => {
  await rejectsWith(client.chat.completions.create({ model: 'gpt-4o-mini', messages: 'not an array' }),
    OpenAI.BadRequestError, 400);
  await rejectsWith(client.chat.completions.create({ model: 'gpt-4o-mini' }), OpenAI.BadRequestError, 400);
});

test('typed errors: an upstream 429 becomes RateLimitError, a 500 InternalServerError', T, async () => {
  await rejectsWith(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: '[mock:status=429]' }] }),
    OpenAI.RateLimitError, 429);
  await rejectsWith(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: '[mock:status=500]' }] }),
    OpenAI.InternalServerError, 500);
});
