// Self-test of the OpenAI mock in Azure mode (`azure: true`), driven by the official `openai`
// SDK's AzureOpenAI client talking to it directly: if the client reaches the deployment routes,
// authenticates and decodes the answers, streams and error shapes, tests built on the mock
// exercise what an Azure OpenAI client sees. No gateway needed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { AzureOpenAI } from 'openai';

import {
  OpenAIMock, DEFAULT_REPLY, DEFAULT_AZURE_AD_TOKEN, AZURE_ACCESS_DENIED, AZURE_CONTENT_FILTER_RESULTS,
  AZURE_PROMPT_FILTER_RESULTS,
} from './openai_mock.mjs';
import { request, stream, sseData } from '../integration/harness.mjs';

const T = { timeout: 20_000 };
const API_VERSION = '2024-10-21';
let mock;
let client;

before(async () => {
  mock = new OpenAIMock({ azure: true });
  await mock.start();
  client = new AzureOpenAI({ endpoint: mock.baseUrl, apiKey: mock.apiKey, apiVersion: API_VERSION, maxRetries: 0 });
});

after(async () => {
  await mock?.stop();
});

const raw = (p, body, headers = { 'api-key': mock.apiKey }) => request(mock.port, { method: 'POST', path: p, headers, body });
const msg = (content) => ({ messages: [{ role: 'user', content }] });

test('AzureOpenAI chat: the deployment route with api-version and api-key; the model behind the deployment; filter results', T, async () => {
  mock.clearRequests();
  const { data: c, response } = await client.chat.completions.create({ model: 'gpt-4o', ...msg('hello') }).withResponse();
  assert.equal(c.choices[0].message.content, DEFAULT_REPLY);
  assert.equal(c.model, 'gpt-4o-2024-11-20', 'Azure names the model behind the deployment');
  assert.deepEqual(c.prompt_filter_results, AZURE_PROMPT_FILTER_RESULTS);
  assert.deepEqual(c.choices[0].content_filter_results, AZURE_CONTENT_FILTER_RESULTS);
  assert.ok(c.usage.total_tokens > 0);
  assert.match(response.headers.get('apim-request-id'), /^[0-9a-f-]{36}$/);
  const [r] = mock.recorded();
  assert.equal(r.path, `/openai/deployments/gpt-4o/chat/completions?api-version=${API_VERSION}`);
  assert.equal(r.headers['api-key'], mock.apiKey);
  assert.equal(r.headers.authorization, undefined);
  // Compact JSON, members in alphabetical order, as Azure sends them.
  const whole = await raw(`/openai/deployments/gpt-4o/chat/completions?api-version=${API_VERSION}`, msg('x'));
  assert.ok(!whole.text.includes('\n'));
  assert.deepEqual(Object.keys(whole.json), ['choices', 'created', 'id', 'model', 'object', 'prompt_filter_results',
    'system_fingerprint', 'usage']);
});

test('AzureOpenAI stream: a first chunk with empty choices and the prompt filter results, then the answer', T, async () => {
  const s = await client.chat.completions.create({ model: 'gpt-4o-mini', ...msg('count'), stream: true,
    stream_options: { include_usage: true } });
  const chunks = [];
  for await (const c of s) chunks.push(c);
  assert.deepEqual(chunks[0].choices, []);
  assert.equal(chunks[0].model, '');
  assert.deepEqual(chunks[0].prompt_filter_results, AZURE_PROMPT_FILTER_RESULTS);
  assert.equal(chunks[1].model, 'gpt-4o-mini-2024-07-18');
  assert.equal(chunks[1].choices[0].delta.role, 'assistant');
  const text = chunks.flatMap((c) => c.choices).map((c) => c.delta?.content ?? '').join('');
  assert.equal(text, DEFAULT_REPLY);
  assert.ok(chunks.some((c) => c.choices[0]?.content_filter_results?.hate?.severity === 'safe'));
  assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
  assert.deepEqual(chunks.at(-1).choices, []);
  assert.ok(chunks.at(-1).usage.completion_tokens > 0);
  // Without include_usage: no usage chunk.
  const r = await stream(mock.port, { path: `/openai/deployments/gpt-4o/chat/completions?api-version=${API_VERSION}`,
    headers: { 'api-key': mock.apiKey }, body: { ...msg('x'), stream: true } });
  const events = sseData(r.raw);
  assert.equal(events.at(-1), '[DONE]');
  assert.ok(events.slice(0, -1).every((e) => !JSON.parse(e).usage));
});

test('AzureOpenAI embeddings: the deployment route, the underlying model', T, async () => {
  const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'bb'] });
  assert.equal(e.model, 'text-embedding-3-small');
  assert.equal(e.data.length, 2);
  assert.equal(e.data[0].embedding.length, 1536);
  assert.equal(e.usage.prompt_tokens, 2);
  assert.equal(mock.recorded().at(-1).path, `/openai/deployments/text-embedding-3-small/embeddings?api-version=${API_VERSION}`);
});

test('Entra ID: a bearer token instead of the api-key', T, async () => {
  const ad = new AzureOpenAI({ endpoint: mock.baseUrl, azureADTokenProvider: async () => DEFAULT_AZURE_AD_TOKEN,
    apiVersion: API_VERSION, maxRetries: 0 });
  const c = await ad.chat.completions.create({ model: 'gpt-4o', ...msg('hi') });
  assert.equal(c.model, 'gpt-4o-2024-11-20');
  assert.equal(mock.recorded().at(-1).headers.authorization, `Bearer ${DEFAULT_AZURE_AD_TOKEN}`);
  const bad = new AzureOpenAI({ endpoint: mock.baseUrl, azureADTokenProvider: async () => 'not-the-token',
    apiVersion: API_VERSION, maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'gpt-4o', ...msg('hi') }),
    (e) => e instanceof OpenAI.AuthenticationError);
});

test('Azure errors: shapes and statuses the client decodes', T, async () => {
  // A wrong key: 401 with Azure's code and message.
  const wrong = new AzureOpenAI({ endpoint: mock.baseUrl, apiKey: 'wrong', apiVersion: API_VERSION, maxRetries: 0 });
  await assert.rejects(wrong.chat.completions.create({ model: 'gpt-4o', ...msg('hi') }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === '401' && e.message.includes(AZURE_ACCESS_DENIED));
  // No api-version, or another path: "Resource not found" (Azure answers 404 there).
  for (const p of ['/openai/deployments/gpt-4o/chat/completions', '/v1/chat/completions',
    `/openai/deployments/gpt-4o/completions?api-version=${API_VERSION}`]) {
    const r = await raw(p, msg('hi'));
    assert.equal(r.status, 404, p);
    assert.deepEqual(r.json, { error: { code: '404', message: 'Resource not found' } });
  }
  const version = await raw('/openai/deployments/gpt-4o/chat/completions?api-version=latest', msg('hi'));
  assert.equal(version.status, 400);
  assert.deepEqual(version.json, { error: { code: 'BadRequest', message: 'API version not supported' } });
  // An unknown deployment.
  await assert.rejects(client.chat.completions.create({ model: 'no-such-deployment', ...msg('hi') }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'DeploymentNotFound');
  // 429 with Retry-After and retry-after-ms.
  const limited = await client.chat.completions.create({ model: 'gpt-4o', ...msg('[mock:status=429] [mock:retry_after=7]') })
    .withResponse().catch((e) => e);
  assert.ok(limited instanceof OpenAI.RateLimitError);
  assert.equal(limited.code, '429');
  assert.equal(limited.headers.get('retry-after'), '7');
  assert.equal(limited.headers.get('retry-after-ms'), '7000');
  assert.match(limited.message, /Please retry after 7 seconds/);
  // The content filter refusing the prompt: 400 content_filter with the inner error.
  const filtered = await client.chat.completions.create({ model: 'gpt-4o', ...msg('[mock:content_filter]') }).catch((e) => e);
  assert.ok(filtered instanceof OpenAI.BadRequestError);
  assert.equal(filtered.code, 'content_filter');
  assert.equal(filtered.error.innererror.code, 'ResponsibleAIPolicyViolation');
  // Validation errors keep OpenAI's shape.
  const invalid = await raw(`/openai/deployments/gpt-4o/chat/completions?api-version=${API_VERSION}`, { messages: [] });
  assert.equal(invalid.status, 400);
  assert.equal(invalid.json.error.param, 'messages');
});

test('AzureOpenAI tool calls: whole and streamed (alphabetical members), assembled by the SDK into the same calls', T, async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object',
    properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const body = { model: 'gpt-4o', ...msg('Weather? [mock:tool_calls=2]'), tools, tool_choice: 'required' };
  const c = await client.chat.completions.create(body);
  assert.equal(c.choices[0].finish_reason, 'tool_calls');
  assert.equal(c.choices[0].message.content, null);
  assert.deepEqual(c.choices[0].message.tool_calls.map((t) => t.function), [{ arguments: '{"city":"mock"}', name: 'get_weather' },
    { arguments: '{"city":"mock"}', name: 'get_weather' }]);
  const whole = await raw(`/openai/deployments/gpt-4o/chat/completions?api-version=${API_VERSION}`, body);
  assert.deepEqual(Object.keys(whole.json.choices[0].message), ['annotations', 'content', 'refusal', 'role', 'tool_calls']);
  assert.deepEqual(Object.keys(whole.json.choices[0].message.tool_calls[0]), ['function', 'id', 'type']);
  const final = await client.chat.completions.stream(body).finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(final.choices[0].message.tool_calls, c.choices[0].message.tool_calls);
  const r = await stream(mock.port, { path: `/openai/deployments/gpt-4o/chat/completions?api-version=${API_VERSION}`,
    headers: { 'api-key': mock.apiKey }, body: { ...body, stream: true } });
  const first = JSON.parse(sseData(r.raw)[1]).choices[0];
  assert.deepEqual(Object.keys(first.delta), ['content', 'refusal', 'role', 'tool_calls']);
  assert.deepEqual(Object.keys(first.delta.tool_calls[0]), ['function', 'id', 'index', 'type']);
  assert.deepEqual(first.content_filter_results, {});
});
