// The translated providers end to end: the official `openai` SDK through the gateway to an
// Anthropic and a Bedrock provider (their mocks check the wire format: Anthropic's headers and
// Messages body, Bedrock's SigV4 signature and Converse body), and the official
// `@anthropic-ai/sdk` through the gateway's inbound /v1/messages to an Anthropic provider
// (passed through) and to an OpenAI one (translated both ways). Whole answers and streams.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

import { startStack } from '../integration/harness.mjs';
import { AnthropicMock, DEFAULT_API_KEY as ANTHROPIC_KEY } from '../mock/anthropic_mock.mjs';
import { BedrockMock, DEFAULT_CREDENTIALS } from '../mock/bedrock_mock.mjs';

const T = { timeout: 30_000 };
let s;
let anthropicMock;
let bedrockMock;
let openai;
let anthropic;

before(async () => {
  anthropicMock = new AnthropicMock();
  await anthropicMock.start();
  bedrockMock = new BedrockMock();
  await bedrockMock.start();
  const aws = DEFAULT_CREDENTIALS[0];
  s = await startStack({
    config: (mockUrl) => ({
      providers: [
        { name: 'mock', type: 'openai', base_url: mockUrl, api_key: { raw: '${MOCK_KEY}' } },
        { name: 'claude', type: 'anthropic', base_url: anthropicMock.baseUrl, api_key: ANTHROPIC_KEY },
        { name: 'bedrock', type: 'bedrock', base_url: bedrockMock.url, region: 'us-east-1',
          aws_access_key_id: aws.accessKeyId, aws_secret_access_key: aws.secretAccessKey },
      ],
      models: [
        { name: 'gpt-4o-mini', provider: 'mock', upstream_model: 'gpt-4o-mini-2024-07-18' },
        { name: 'claude-sonnet-4', provider: 'claude', upstream_model: 'claude-sonnet-4-20250514' },
        { name: 'bedrock-claude', provider: 'bedrock',
          upstream_model: 'us.anthropic.claude-sonnet-4-20250514-v1:0' },
      ],
    }),
  });
  openai = new OpenAI({ apiKey: s.key, baseURL: s.gw.baseUrl, maxRetries: 0, timeout: 15_000 });
  anthropic = new Anthropic({ apiKey: s.key, baseURL: s.gw.baseUrl.replace(/\/v1$/, ''), maxRetries: 0, timeout: 15_000 });
});

after(async () => {
  await s?.close();
  await anthropicMock?.stop();
  await bedrockMock?.stop();
});

for (const model of ['claude-sonnet-4', 'bedrock-claude']) {
  test(`openai SDK → ${model}: a whole answer with usage and a priced cost`, T, async () => {
    const { data, response } = await openai.chat.completions.create({
      model,
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }],
      max_tokens: 64,
    }).withResponse();
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.choices[0].message.role, 'assistant');
    assert.equal(typeof data.choices[0].message.content, 'string');
    assert.ok(data.choices[0].message.content.length > 0);
    assert.equal(data.choices[0].finish_reason, 'stop');
    assert.ok(data.usage.prompt_tokens > 0);
    assert.ok(data.usage.completion_tokens > 0);
    assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
    assert.equal(response.headers.get('x-llmgw-cost-status'), 'exact');
    assert.match(response.headers.get('x-llmgw-cost-usd'), /^\d+\.\d+$/);
  });

  test(`openai SDK → ${model}: a stream with usage gives the same tokens as the whole answer`, T, async () => {
    const messages = [{ role: 'user', content: 'Count to three' }];
    const whole = await openai.chat.completions.create({ model, messages, max_tokens: 64 });
    const stream = await openai.chat.completions.create({
      model, messages, max_tokens: 64, stream: true, stream_options: { include_usage: true },
    });
    let text = '';
    let usage = null;
    let finish = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        text += c.delta?.content ?? '';
        finish = c.finish_reason ?? finish;
      }
    }
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(finish, 'stop');
    assert.ok(usage);
    assert.equal(usage.prompt_tokens, whole.usage.prompt_tokens);
    assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
  });

  test(`openai SDK → ${model}: tool calls come back as OpenAI tool_calls`, T, async () => {
    const c = await openai.chat.completions.create({
      model,
      max_tokens: 256,
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    });
    const calls = c.choices[0].message.tool_calls;
    assert.ok(Array.isArray(calls) && calls.length >= 1, JSON.stringify(c));
    assert.equal(calls[0].type, 'function');
    assert.equal(calls[0].function.name, 'get_weather');
    assert.equal(typeof JSON.parse(calls[0].function.arguments), 'object');
    assert.equal(c.choices[0].finish_reason, 'tool_calls');
  });
}

test('openai SDK → gpt-4o-mini (passed through): the tool runner\'s round trip, whole and streamed', T, async () => {
  const seen = [];
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    parse: JSON.parse, function: (a) => { seen.push(a); return 'Sunny, 21 °C'; } } }];
  for (const stream of [false, true]) {
    seen.length = 0;
    const runner = openai.chat.completions.runTools({ model: 'gpt-4o-mini', stream, tools,
      messages: [{ role: 'user', content: 'Weather in Paris and Rome? [mock:tool_calls=2]' }] });
    assert.equal(await runner.finalContent(), 'Tool result: Sunny, 21 °C; Sunny, 21 °C', `stream ${stream}`);
    assert.deepEqual(seen, [{ city: 'mock' }, { city: 'mock' }]);
    assert.deepEqual(runner.messages.map((m) => m.role), ['user', 'assistant', 'tool', 'tool', 'assistant']);
  }
});

test('openai SDK: n > 1 to an Anthropic model is a typed 400', T, async () => {
  await assert.rejects(
    openai.chat.completions.create({ model: 'claude-sonnet-4', n: 2, max_tokens: 16,
      messages: [{ role: 'user', content: 'Hi' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'n');
});

for (const model of ['claude-sonnet-4', 'gpt-4o-mini']) {
  test(`anthropic SDK → /v1/messages → ${model}: a whole message`, T, async () => {
    const m = await anthropic.messages.create({
      model, max_tokens: 64, system: 'Be brief.', messages: [{ role: 'user', content: 'Say hello' }],
    });
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.equal(m.content[0].type, 'text');
    assert.ok(m.content[0].text.length > 0);
    assert.equal(m.stop_reason, 'end_turn');
    assert.ok(m.usage.input_tokens > 0);
    assert.ok(m.usage.output_tokens > 0);
  });

  test(`anthropic SDK → /v1/messages → ${model}: a stream`, T, async () => {
    const stream = anthropic.messages.stream({
      model, max_tokens: 64, messages: [{ role: 'user', content: 'Count to three' }],
    });
    let text = '';
    stream.on('text', (t) => { text += t; });
    const final = await stream.finalMessage();
    assert.ok(text.length > 0);
    assert.equal(final.content[0].text, text);
    assert.equal(final.stop_reason, 'end_turn');
    assert.ok(final.usage.output_tokens > 0);
  });
}

// To the OpenAI provider the tool round trip is translated both ways: tools, tool_choice and
// tool_use / tool_result blocks into OpenAI's tools, tool_choice, tool_calls and tool messages
// (the OpenAI mock refuses a history whose tool messages do not answer the calls), and tool_calls
// back into tool_use blocks, whole and streamed.
for (const model of ['claude-sonnet-4', 'gpt-4o-mini']) {
  test(`anthropic SDK → /v1/messages → ${model}: a tool round trip`, T, async () => {
    const tools = [{ name: 'get_weather', description: 'Weather for a city',
      input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
    const first = await anthropic.messages.create({
      model, max_tokens: 256, tools, tool_choice: { type: 'tool', name: 'get_weather' },
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
    });
    assert.equal(first.stop_reason, 'tool_use', JSON.stringify(first));
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.ok(use, JSON.stringify(first.content));
    assert.equal(use.name, 'get_weather');
    assert.equal(typeof use.input, 'object');
    assert.equal(typeof use.input.city, 'string', JSON.stringify(use));
    const second = await anthropic.messages.create({
      model, max_tokens: 256, tools,
      messages: [
        { role: 'user', content: 'What is the weather in Paris?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'Sunny, 21 °C' }] },
      ],
    });
    assert.equal(second.stop_reason, 'end_turn');
    const text = second.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
    assert.ok(text.includes('Sunny, 21 °C'), `the answer quotes the tool result: ${JSON.stringify(second)}`);
    if (model === 'gpt-4o-mini') {
      // What the OpenAI provider was sent: OpenAI's tools, a named tool_choice, then the call and its result.
      const [a, b] = s.mock.recorded().slice(-2).map((r) => JSON.parse(r.body_text));
      assert.deepEqual(a.tools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city',
        parameters: tools[0].input_schema } }]);
      assert.deepEqual(a.tool_choice, { type: 'function', function: { name: 'get_weather' } });
      assert.deepEqual(b.messages.slice(1), [
        { role: 'assistant', content: null, tool_calls: [{ id: use.id, type: 'function',
          function: { name: 'get_weather', arguments: JSON.stringify(use.input) } }] },
        { role: 'tool', tool_call_id: use.id, content: 'Sunny, 21 °C' },
      ]);
    }
  });

  test(`anthropic SDK → /v1/messages → ${model}: parallel tool calls, streamed`, T, async () => {
    const tools = [
      { name: 'get_weather', description: 'Weather for a city',
        input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
      { name: 'get_time', description: 'Time in a zone',
        input_schema: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] } },
    ];
    // Each mock's own directive for two calls.
    const directive = model === 'gpt-4o-mini' ? '[mock:tool_calls=2]' : '[mock:parallel_tools=2]';
    const messages = [{ role: 'user', content: `Weather and time in Paris? ${directive}` }];
    const whole = await anthropic.messages.create({ model, max_tokens: 256, tools, messages });
    const stream = anthropic.messages.stream({ model, max_tokens: 256, tools, messages });
    const final = await stream.finalMessage();
    for (const m of [whole, final]) {
      assert.equal(m.stop_reason, 'tool_use', JSON.stringify(m));
      const uses = m.content.filter((b) => b.type === 'tool_use');
      assert.deepEqual(uses.map((b) => b.name), ['get_weather', 'get_time'], JSON.stringify(m.content));
      assert.equal(new Set(uses.map((b) => b.id)).size, 2);
    }
    const uses = (m) => m.content.filter((b) => b.type === 'tool_use').map(({ id, name, input }) => ({ id, name, input }));
    assert.deepEqual(uses(final), uses(whole), 'the stream assembles the same calls');
    // disable_parallel_tool_use (OpenAI: parallel_tool_calls false) with tool_choice any (required): one call.
    const single = await anthropic.messages.create({ model, max_tokens: 256, tools, messages,
      tool_choice: { type: 'any', disable_parallel_tool_use: true } });
    assert.deepEqual(uses(single).map((u) => u.name), ['get_weather'], JSON.stringify(single));
    const results = whole.content.filter((b) => b.type === 'tool_use')
      .map((b, i) => ({ type: 'tool_result', tool_use_id: b.id, content: i === 0 ? 'Sunny' : '14:05' }));
    const after = anthropic.messages.stream({ model, max_tokens: 256, tools,
      messages: [...messages, { role: 'assistant', content: whole.content }, { role: 'user', content: results }] });
    const answer = await after.finalMessage();
    assert.equal(answer.stop_reason, 'end_turn', JSON.stringify(answer));
    const text = answer.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
    assert.ok(text.includes('Sunny') && text.includes('14:05'), JSON.stringify(answer));
  });
}

test('anthropic SDK: errors come in Anthropic\'s shape', T, async () => {
  await assert.rejects(
    anthropic.messages.create({ model: 'no-such-model', max_tokens: 8,
      messages: [{ role: 'user', content: 'Hi' }] }),
    (e) => e instanceof Anthropic.NotFoundError && e.error?.type === 'error' &&
      e.error?.error?.type === 'not_found_error');
  await assert.rejects(
    new Anthropic({ apiKey: 'sk-llmgw-wrong', baseURL: s.gw.baseUrl.replace(/\/v1$/, ''), maxRetries: 0 }).messages.create({
      model: 'claude-sonnet-4', max_tokens: 8, messages: [{ role: 'user', content: 'Hi' }] }),
    (e) => e instanceof Anthropic.AuthenticationError);
});

/** The usage row of the call the client tagged `rid`, once the writer has stored it. */
async function usageRow(rid) {
  for (let i = 0; i < 100; i++) {
    const rows = await s.gw.usageFor(rid);
    if (rows.length > 0) return rows[0];
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no usage row for ${rid}`);
}

test('cost parity: the same call streamed and not gives identical tokens and cost (cache reads and writes included)', T, async () => {
  const cases = [
    ['bedrock-claude', 'Hi [mock:cache_read_tokens=1200][mock:cache_write_tokens=300]'],
    ['claude-sonnet-4', 'Hi [mock:input_tokens=1500][mock:output_tokens=40]'],
  ];
  const tags = {};
  for (const [model, content] of cases) {
    const tag = `parity-${model}-${Date.now()}`;
    tags[model] = tag;
    const messages = [{ role: 'user', content }];
    await openai.chat.completions.create({ model, messages, max_tokens: 64 },
      { headers: { 'x-request-id': `${tag}-whole` } });
    const stream = await openai.chat.completions.create({ model, messages, max_tokens: 64, stream: true },
      { headers: { 'x-request-id': `${tag}-stream` } });
    for await (const _ of stream) { /* drain */ }
    const a = await usageRow(`${tag}-whole`);
    const b = await usageRow(`${tag}-stream`);
    for (const f of ['prompt_tokens', 'completion_tokens', 'cached_tokens', 'cache_write_tokens',
      'reasoning_tokens', 'cost_usd', 'cost_status', 'pricing_model']) {
      assert.equal(String(b[f]), String(a[f]), `${model}: ${f} streamed ${b[f]} vs whole ${a[f]}`);
    }
    assert.equal(a.cost_status, 'exact', `${model} priced: ${JSON.stringify(a)}`);
    assert.equal(a.usage_reported, b.usage_reported);
  }
  const bedrock = await usageRow(`${tags['bedrock-claude']}-whole`);
  assert.equal(Number(bedrock.cached_tokens), 1200);
  assert.equal(Number(bedrock.cache_write_tokens), 300);
});

test('a stream the provider cuts is billed for what it reported and ends with an error event', T, async () => {
  const rid = `cut-${Date.now()}`;
  const stream = await openai.chat.completions.create({
    model: 'claude-sonnet-4', max_tokens: 64, stream: true,
    messages: [{ role: 'user', content: 'Tell me a story [mock:input_tokens=700][mock:cut_after=5]' }],
  }, { headers: { 'x-request-id': rid } });
  await assert.rejects((async () => { for await (const _ of stream) { /* drain */ } })());
  const row = await usageRow(rid);
  assert.equal(Number(row.status), 502);
  assert.equal(Number(row.prompt_tokens), 700, 'message_start reported the input tokens');
  assert.equal(row.cost_status, 'exact');
  assert.ok(Number(row.cost_usd) > 0);
});
