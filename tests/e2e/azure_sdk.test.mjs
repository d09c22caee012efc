// Azure OpenAI end to end: the official `openai` SDK through the gateway to an `azure` provider
// whose upstream is the OpenAI mock in Azure mode (tests/mock/openai_mock.mjs, `azure: true`,
// checked with the SDK's AzureOpenAI client in tests/mock/openai_mock_azure.test.mjs). The
// gateway calls the deployment routes with api-version and the api-key header (or an Entra ID
// token), and prices each call by the model Azure says answered (the deployment names none the
// price list knows), for whole answers and streams alike.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

import { startStack, waitUntil } from '../integration/harness.mjs';
import { DEFAULT_REPLY, DEFAULT_AZURE_AD_TOKEN } from '../mock/openai_mock.mjs';

const T = { timeout: 30_000 };
const API_VERSION = '2024-10-21';
// Catalog prices (catalog/litellm): azure/gpt-4o-2024-11-20 and azure/text-embedding-3-small.
const GPT4O_1120 = { input: 2.75e-6, output: 1.1e-5 };
const EMBED_3_SMALL = { input: 2e-8 };
let s;
let openai;

before(async () => {
  s = await startStack({
    mockOptions: { azure: true, deployments: { 'prod-chat': 'gpt-4o-2024-11-20', 'prod-embed': 'text-embedding-3-small' } },
    config: (endpoint) => ({
      providers: [
        { name: 'azure', type: 'azure', base_url: endpoint, api_key: { raw: '${MOCK_KEY}' }, api_version: API_VERSION },
        { name: 'azure-entra', type: 'azure', base_url: endpoint, azure_ad_token: DEFAULT_AZURE_AD_TOKEN },
        { name: 'azure-badkey', type: 'azure', base_url: endpoint, api_key: 'not-the-azure-key' },
      ],
      models: [
        { name: 'gpt-4o-eu', provider: 'azure', upstream_model: 'prod-chat' },
        { name: 'embed-eu', provider: 'azure', upstream_model: 'prod-embed' },
        { name: 'gpt-4o-entra', provider: 'azure-entra', upstream_model: 'prod-chat' },
        { name: 'gpt-4o-badkey', provider: 'azure-badkey', upstream_model: 'prod-chat' },
      ],
    }),
  });
  openai = new OpenAI({ apiKey: s.key, baseURL: s.gw.baseUrl, maxRetries: 0, timeout: 15_000 });
});

after(async () => {
  await s?.close();
});

const tokens = (p, c) => `[mock:prompt_tokens=${p}] [mock:completion_tokens=${c}]`;
const close = (actual, expected) => Math.abs(Number(actual) - expected) < 1e-12;

async function usageRow(rid) {
  let row;
  await waitUntil(async () => {
    [row] = await s.gw.usageFor(rid);
    return row !== undefined;
  }, 10_000, `the usage row of ${rid}`);
  return row;
}

test('chat: the deployment route, api-version and api-key; priced by the model Azure reports', T, async () => {
  s.mock.clearRequests();
  const { data, response } = await openai.chat.completions.create({
    model: 'gpt-4o-eu', messages: [{ role: 'user', content: `Say hello ${tokens(1000, 100)}` }],
  }).withResponse();
  assert.equal(data.choices[0].message.content, DEFAULT_REPLY);
  assert.equal(data.model, 'gpt-4o-2024-11-20');
  assert.equal(data.prompt_filter_results[0].prompt_index, 0, 'Azure\'s filter results reach the client');
  assert.equal(data.choices[0].content_filter_results.hate.severity, 'safe');
  assert.equal(response.headers.get('x-llmgw-cost-status'), 'exact');
  assert.ok(close(response.headers.get('x-llmgw-cost-usd'), 1000 * GPT4O_1120.input + 100 * GPT4O_1120.output),
    response.headers.get('x-llmgw-cost-usd'));
  const [r] = s.mock.recorded();
  assert.equal(r.path, `/openai/deployments/prod-chat/chat/completions?api-version=${API_VERSION}`);
  assert.equal(r.headers['api-key'], s.mock.apiKey);
  assert.equal(r.headers.authorization, undefined, 'the client\'s gateway key never goes upstream');
  assert.equal(r.status, 200);
});

test('stream: the empty-choices first chunk passes; the usage row is priced by the reported model', T, async () => {
  const rid = `az-stream-${Date.now()}`;
  const stream = await openai.chat.completions.create({
    model: 'gpt-4o-eu', stream: true, messages: [{ role: 'user', content: `Count ${tokens(2000, 9)}` }],
  }, { headers: { 'x-request-id': rid } });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.deepEqual(chunks[0].choices, []);
  assert.ok(chunks[0].prompt_filter_results, 'the prompt filter chunk reaches the client');
  assert.equal(chunks.flatMap((c) => c.choices).map((c) => c.delta?.content ?? '').join(''), DEFAULT_REPLY);
  assert.ok(chunks.every((c) => c.usage === undefined), 'the client did not ask for usage');
  const row = await usageRow(rid);
  assert.equal(Number(row.stream), 1);
  assert.equal(Number(row.prompt_tokens), 2000);
  assert.equal(Number(row.completion_tokens), 9);
  assert.equal(row.cost_status, 'exact');
  assert.ok(close(row.cost_usd, 2000 * GPT4O_1120.input + 9 * GPT4O_1120.output), row.cost_usd);

  // Asked for, the usage chunk comes last.
  const withUsage = await openai.chat.completions.create({
    model: 'gpt-4o-eu', stream: true, stream_options: { include_usage: true },
    messages: [{ role: 'user', content: `Count ${tokens(30, 9)}` }],
  });
  let last;
  for await (const c of withUsage) last = c;
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.prompt_tokens, 30);
});

test('embeddings: the deployment route; priced by the reported model', T, async () => {
  s.mock.clearRequests();
  const { data, response } = await openai.embeddings.create({
    model: 'embed-eu', input: ['hello', `world [mock:prompt_tokens=500]`],
  }).withResponse();
  assert.equal(data.model, 'text-embedding-3-small');
  assert.equal(data.data.length, 2);
  assert.equal(data.data[0].embedding.length, 1536);
  assert.equal(response.headers.get('x-llmgw-cost-status'), 'exact');
  assert.ok(close(response.headers.get('x-llmgw-cost-usd'), 500 * EMBED_3_SMALL.input), response.headers.get('x-llmgw-cost-usd'));
  assert.equal(s.mock.recorded()[0].path, `/openai/deployments/prod-embed/embeddings?api-version=${API_VERSION}`);
});

test('anthropic SDK → /v1/messages → azure: translated both ways, the stream priced by the reported model', T, async () => {
  const anthropic = new Anthropic({ apiKey: s.key, baseURL: s.gw.baseUrl.replace(/\/v1$/, ''), maxRetries: 0 });
  const { data, response } = await anthropic.messages.create({
    model: 'gpt-4o-eu', max_tokens: 64, messages: [{ role: 'user', content: `hi ${tokens(1000, 100)}` }],
  }).withResponse();
  assert.equal(data.content[0].text, DEFAULT_REPLY);
  assert.equal(data.model, 'gpt-4o-eu');
  assert.equal(response.headers.get('x-llmgw-cost-status'), 'exact');
  assert.ok(close(response.headers.get('x-llmgw-cost-usd'), 1000 * GPT4O_1120.input + 100 * GPT4O_1120.output));
  const rid = `az-messages-stream-${Date.now()}`;
  const stream = anthropic.messages.stream({
    model: 'gpt-4o-eu', max_tokens: 64, messages: [{ role: 'user', content: `count ${tokens(400, 9)}` }],
  }, { headers: { 'x-request-id': rid } });
  const final = await stream.finalMessage();
  assert.equal(final.content[0].text, DEFAULT_REPLY);
  assert.equal(final.stop_reason, 'end_turn');
  assert.equal(final.usage.input_tokens, 400);
  const row = await usageRow(rid);
  assert.equal(row.cost_status, 'exact');
  assert.ok(close(row.cost_usd, 400 * GPT4O_1120.input + 9 * GPT4O_1120.output), row.cost_usd);
});

test('an Entra ID token goes as a bearer token, without api-key', T, async () => {
  s.mock.clearRequests();
  const c = await openai.chat.completions.create({ model: 'gpt-4o-entra', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(c.model, 'gpt-4o-2024-11-20');
  const [r] = s.mock.recorded();
  assert.equal(r.headers.authorization, `Bearer ${DEFAULT_AZURE_AD_TOKEN}`);
  assert.equal(r.headers['api-key'], undefined);
});

test('429 from Azure: passed on with its Retry-After and Azure\'s body', T, async () => {
  const e = await openai.chat.completions.create({
    model: 'gpt-4o-eu', messages: [{ role: 'user', content: 'hi [mock:status=429] [mock:retry_after=7]' }],
  }).catch((x) => x);
  assert.ok(e instanceof OpenAI.RateLimitError, String(e));
  assert.equal(e.status, 429);
  assert.equal(e.headers.get('retry-after'), '7');
  assert.equal(e.code, '429');
  assert.match(e.message, /Please retry after 7 seconds/);
});

test('Azure\'s content filter refusal reaches the client as a 400 content_filter', T, async () => {
  const e = await openai.chat.completions.create({
    model: 'gpt-4o-eu', messages: [{ role: 'user', content: 'hi [mock:content_filter]' }],
  }).catch((x) => x);
  assert.ok(e instanceof OpenAI.BadRequestError, String(e));
  assert.equal(e.code, 'content_filter');
});

test('a key Azure refuses is the operator\'s problem: 502, Azure\'s message withheld', T, async () => {
  const e = await openai.chat.completions.create({
    model: 'gpt-4o-badkey', messages: [{ role: 'user', content: 'hi' }],
  }).catch((x) => x);
  assert.ok(e instanceof OpenAI.APIError, String(e));
  assert.equal(e.status, 502);
  assert.doesNotMatch(e.message, /subscription key/);
  assert.doesNotMatch(e.message, /not-the-azure-key/);
});
