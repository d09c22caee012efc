// The Google providers end to end with the official `openai` SDK through the gateway: the
// Gemini API (API key) and Vertex AI (a service-account key file: the gateway signs an RS256
// JWT, exchanges it at the file's token_uri — the Vertex mock, which verifies the signature —
// and refreshes the token once for all calls), Gemini and Claude models on Vertex, chat,
// streams and embeddings.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { startStack } from '../integration/harness.mjs';
import { GeminiMock, DEFAULT_API_KEY as GEMINI_KEY } from '../mock/gemini_mock.mjs';
import { VertexMock, DEFAULT_PROJECT } from '../mock/vertex_mock.mjs';

const T = { timeout: 30_000 };
let s;
let gemini;
let vertex;
let openai;

before(async () => {
  gemini = new GeminiMock();
  await gemini.start();
  vertex = new VertexMock({ accessToken: null });  // only tokens it issued are accepted
  await vertex.start();
  const { path: keyFile } = vertex.writeServiceAccountFile();
  s = await startStack({
    config: (mockUrl) => ({
      providers: [
        { name: 'mock', type: 'openai', base_url: mockUrl, api_key: { raw: '${MOCK_KEY}' } },
        { name: 'gemini', type: 'gemini', base_url: gemini.baseUrl, api_key: GEMINI_KEY },
        { name: 'vertex', type: 'vertex', base_url: vertex.baseUrl, project: DEFAULT_PROJECT,
          location: 'us-central1', credentials_file: keyFile },
      ],
      models: [
        { name: 'gemini-flash', provider: 'gemini', upstream_model: 'gemini-2.5-flash' },
        { name: 'gemini-embed', provider: 'gemini', upstream_model: 'gemini-embedding-001' },
        { name: 'vertex-gemini', provider: 'vertex', upstream_model: 'gemini-2.5-flash' },
        { name: 'vertex-claude', provider: 'vertex', upstream_model: 'claude-sonnet-4@20250514' },
        { name: 'vertex-embed', provider: 'vertex', upstream_model: 'text-embedding-005' },
      ],
    }),
  });
  openai = new OpenAI({ apiKey: s.key, baseURL: s.gw.baseUrl, maxRetries: 0, timeout: 20_000 });
});

after(async () => {
  await s?.close();
  await gemini?.stop();
  await vertex?.stop();
});

for (const model of ['gemini-flash', 'vertex-gemini', 'vertex-claude']) {
  test(`${model}: a whole answer, priced from the catalog entry of the provider's name`, T, async () => {
    const { data, response } = await openai.chat.completions.create({
      model, max_tokens: 64,
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }],
    }).withResponse();
    assert.equal(data.object, 'chat.completion');
    assert.ok(data.choices[0].message.content.length > 0);
    assert.equal(data.choices[0].finish_reason, 'stop');
    assert.ok(data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0, JSON.stringify(data.usage));
    assert.equal(response.headers.get('x-llmgw-cost-status'), 'exact');
  });

  test(`${model}: the stream's text and tokens equal the whole answer's`, T, async () => {
    const messages = [{ role: 'user', content: 'Count to three' }];
    const whole = await openai.chat.completions.create({ model, messages, max_tokens: 64 });
    const stream = await openai.chat.completions.create({
      model, messages, max_tokens: 64, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) text += c.delta?.content ?? '';
    }
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(usage?.prompt_tokens, whole.usage.prompt_tokens);
    assert.equal(usage?.completion_tokens, whole.usage.completion_tokens);
  });
}

for (const model of ['gemini-embed', 'vertex-embed']) {
  test(`${model}: embeddings in OpenAI's shape`, T, async () => {
    const e = await openai.embeddings.create({ model, input: ['alpha', 'beta'], encoding_format: 'float' });
    assert.equal(e.object, 'list');
    assert.equal(e.data.length, 2);
    assert.deepEqual(e.data.map((d) => d.index), [0, 1]);
    assert.ok(e.data.every((d) => Array.isArray(d.embedding) && d.embedding.length > 0));
  });
}

test('vertex: one token for many concurrent calls, fetched from the file\'s token_uri', T, async () => {
  const before = vertex.issuedTokenCount;
  await Promise.all(Array.from({ length: 10 }, () => openai.chat.completions.create({
    model: 'vertex-gemini', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] })));
  assert.equal(vertex.issuedTokenCount, before, 'the token fetched for the first call is reused');
  assert.ok(vertex.issuedTokenCount >= 1);
  assert.ok(vertex.issuedTokenCount <= 2, `tokens issued: ${vertex.issuedTokenCount}`);
  assert.ok(vertex.recorded().every((r) => r.auth === 'issued'), 'every call carried an issued token');
});

test('gemini: a 429 keeps its status and Retry-After; n > 1 is served (Gemini has candidateCount)', T, async () => {
  const c = await openai.chat.completions.create({ model: 'gemini-flash', n: 2, max_tokens: 16,
    messages: [{ role: 'user', content: 'Hi' }] });
  assert.equal(c.choices.length, 2);
  await assert.rejects(
    openai.chat.completions.create({ model: 'gemini-flash', max_tokens: 16,
      messages: [{ role: 'user', content: 'Hi [mock:status=429]' }] }),
    (e) => e instanceof OpenAI.RateLimitError && Number(e.headers?.get?.('retry-after') ?? e.headers?.['retry-after']) > 0);
});
