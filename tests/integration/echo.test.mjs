// The `echo` provider answers locally and deterministically, in OpenAI's formats, with usage:
// chat JSON, chat stream, embeddings (float and base64). No upstream is contacted.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, chat, chatBody, postJson, stream, sseData, sseChunks } from './harness.mjs';

const T = { timeout: 30_000 };
let s;

before(async () => {
  s = await startStack();
});

after(async () => {
  await s?.close();
});

function stripVolatile(b) {
  const { id, created, ...rest } = b;
  return rest;
}

test('echo chat: OpenAI chat.completion shape with usage, deterministic, no upstream call', T, async () => {
  s.mock.clearRequests();
  const body = chatBody('echo-chat', 'The quick brown fox');
  const a = await chat(s.gw.port, s.key, body);
  const b = await chat(s.gw.port, s.key, body);
  assert.equal(a.status, 200, a.text);
  assert.match(a.headers['content-type'], /application\/json/);
  const j = a.json;
  assert.equal(j.object, 'chat.completion');
  assert.equal(typeof j.id, 'string');
  assert.ok(j.id.length > 0);
  assert.ok(Number.isInteger(j.created));
  assert.equal(typeof j.model, 'string');
  assert.equal(j.choices.length, 1);
  assert.equal(j.choices[0].index, 0);
  assert.equal(j.choices[0].message.role, 'assistant');
  assert.equal(typeof j.choices[0].message.content, 'string');
  assert.ok(j.choices[0].message.content.length > 0);
  assert.ok('finish_reason' in j.choices[0]);
  assert.equal(j.choices[0].finish_reason, 'stop');
  assert.ok(j.usage.prompt_tokens > 0, `prompt_tokens: ${JSON.stringify(j.usage)}`);
  assert.ok(j.usage.completion_tokens > 0, `completion_tokens: ${JSON.stringify(j.usage)}`);
  assert.equal(j.usage.total_tokens, j.usage.prompt_tokens + j.usage.completion_tokens);
  assert.deepEqual(stripVolatile(b.json), stripVolatile(j), 'two identical requests must get the same answer');
  const other = await chat(s.gw.port, s.key, chatBody('echo-chat', 'Something else entirely, and longer'));
  assert.notDeepEqual(other.json.usage, j.usage, 'usage depends on the input');
  const alias = await chat(s.gw.port, s.key, chatBody('quick-echo', 'The quick brown fox'));
  assert.equal(alias.status, 200, alias.text);
  assert.equal(alias.json.choices[0].message.content, j.choices[0].message.content);
  assert.equal(s.mock.recorded().length, 0, 'echo must not contact any upstream');
});

test('echo stream: chunks in OpenAI format, same content as JSON, usage only when asked', T, async () => {
  const text = 'Streaming echo test';
  const json = await chat(s.gw.port, s.key, chatBody('echo-chat', text));
  const plain = await stream(s.gw.port, { body: chatBody('echo-chat', text, { stream: true }),
    headers: { authorization: `Bearer ${s.key}` } });
  assert.equal(plain.status, 200, plain.raw);
  assert.match(plain.headers['content-type'], /^text\/event-stream/);
  assert.ok(plain.complete);
  assert.equal(sseData(plain.raw).at(-1), '[DONE]');
  const chunks = sseChunks(plain.raw);
  assert.ok(chunks.length >= 2, plain.raw);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.id, chunks[0].id, 'every chunk has the same id');
    assert.ok(Number.isInteger(c.created));
    assert.ok(c.usage === undefined, `usage must be absent without include_usage: ${JSON.stringify(c)}`);
  }
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const content = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(content, json.json.choices[0].message.content, 'stream content equals the JSON content');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  for (const c of chunks.slice(0, -1)) assert.equal(c.choices[0].finish_reason, null);

  const withUsage = await stream(s.gw.port, {
    body: chatBody('echo-chat', text, { stream: true, stream_options: { include_usage: true } }),
    headers: { authorization: `Bearer ${s.key}` } });
  assert.equal(withUsage.status, 200);
  const uc = sseChunks(withUsage.raw);
  const last = uc.at(-1);
  assert.deepEqual(last.choices, [], `the usage chunk has "choices":[]: ${JSON.stringify(last)}`);
  assert.deepEqual(
    [last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens],
    [json.json.usage.prompt_tokens, json.json.usage.completion_tokens, json.json.usage.total_tokens]);
  for (const c of uc.slice(0, -1)) assert.equal(c.usage, null, 'the other chunks carry "usage":null');
});

test('echo embeddings: OpenAI list shape, deterministic vectors, usage, base64 too', T, async () => {
  const body = { model: 'echo-embed', input: ['first text', 'second text'] };
  const a = await postJson(s.gw.port, s.key, '/v1/embeddings', body);
  assert.equal(a.status, 200, a.text);
  const j = a.json;
  assert.equal(j.object, 'list');
  assert.equal(typeof j.model, 'string');
  assert.equal(j.data.length, 2);
  j.data.forEach((d, i) => {
    assert.equal(d.object, 'embedding');
    assert.equal(d.index, i);
    assert.ok(Array.isArray(d.embedding) && d.embedding.length > 0);
    assert.ok(d.embedding.every((x) => typeof x === 'number' && Number.isFinite(x)));
  });
  assert.equal(j.data[0].embedding.length, j.data[1].embedding.length);
  assert.notDeepEqual(j.data[0].embedding, j.data[1].embedding);
  assert.ok(j.usage.prompt_tokens > 0);
  assert.equal(j.usage.total_tokens, j.usage.prompt_tokens);
  const again = await postJson(s.gw.port, s.key, '/v1/embeddings', body);
  assert.deepEqual(again.json.data, j.data, 'deterministic');

  const b64 = await postJson(s.gw.port, s.key, '/v1/embeddings', { ...body, encoding_format: 'base64' });
  assert.equal(b64.status, 200, b64.text);
  const e = b64.json.data[0].embedding;
  assert.equal(typeof e, 'string', 'encoding_format base64 returns a base64 string (the openai SDK asks for it by default)');
  const buf = Buffer.from(e, 'base64');
  const floats = Array.from(new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length)));
  assert.equal(floats.length, j.data[0].embedding.length);
  floats.forEach((f, i) => assert.ok(Math.abs(f - j.data[0].embedding[i]) < 1e-6, `component ${i}: ${f} vs ${j.data[0].embedding[i]}`));
});
