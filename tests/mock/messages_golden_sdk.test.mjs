// The Anthropic-format answers of tests/data/providers/messages/ (what the gateway sends a
// Messages client when an OpenAI-chat provider answered), decoded by Anthropic's official SDK
// (@anthropic-ai/sdk): if the SDK turns them into the Message the OpenAI answer meant, Claude
// clients read the gateway's translation as they read Anthropic. No gateway needed: a local
// server replays each golden file.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Anthropic, { APIError } from '@anthropic-ai/sdk';

const T = { timeout: 20_000 };
const CASES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../data/providers/messages');
let server;
let port;

/** Replays /<case>/v1/messages from the case's client_response.sse or .json. */
before(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const name = req.url.split('/')[1];
      const sse = path.join(CASES, name, 'client_response.sse');
      const whole = path.join(CASES, name, 'client_response.json');
      if (fs.existsSync(sse)) {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
        res.end(fs.readFileSync(sse));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(fs.readFileSync(whole));
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = server.address().port;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const client = (name) => new Anthropic({ apiKey: 'sk-ant-test', baseURL: `http://127.0.0.1:${port}/${name}`, maxRetries: 0 });
const request = (name) => JSON.parse(fs.readFileSync(path.join(CASES, name, 'client_request.json'), 'utf8'));

test('a streamed text and two tool calls become one Message with its usage', T, async () => {
  const params = request('stream_text_and_tools');
  const events = [];
  const s = client('stream_text_and_tools').messages.stream(params);
  s.on('streamEvent', (e) => events.push(e.type));
  const m = await s.finalMessage();
  assert.equal(m.id, 'msg_B9MHDbslfkBeAs8l4bebGdFOJ6PeG');
  assert.equal(m.model, params.model);
  assert.equal(m.stop_reason, 'tool_use');
  assert.equal(m.stop_sequence, null);
  assert.deepEqual(m.content, [
    { type: 'text', text: "I'll check both." },
    { type: 'tool_use', id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', name: 'get_weather', input: { city: 'Paris' } },
    { type: 'tool_use', id: 'call_7yU2mCPk1zQhtq0sWJ3PTnLv', name: 'get_time', input: { city: 'Paris' } },
  ]);
  // message_delta carries the whole usage (OpenAI reports it only at the end).
  assert.equal(m.usage.input_tokens, 240);
  assert.equal(m.usage.cache_read_input_tokens, 1280);
  assert.equal(m.usage.cache_creation_input_tokens, 0);
  assert.equal(m.usage.output_tokens, 61);
  assert.equal(events[0], 'message_start');
  assert.equal(events.at(-1), 'message_stop');

  // The raw events, as a client iterating `stream: true` sees them.
  const raw = [];
  for await (const e of await client('stream_text_and_tools').messages.create({ ...params, stream: true })) raw.push(e);
  assert.deepEqual(raw.filter((e) => e.type === 'content_block_start').map((e) => [e.index, e.content_block.type]),
    [[0, 'text'], [1, 'tool_use'], [2, 'tool_use']]);
});

test('an error inside the stream reaches the client as the SDK error', T, async () => {
  const s = client('stream_error').messages.stream(request('stream_error'));
  const texts = [];
  s.on('text', (t) => texts.push(t));
  await assert.rejects(s.finalMessage(), (err) => {
    assert.ok(err instanceof APIError, String(err));
    assert.match(err.message, /overloaded_error/);
    assert.match(err.message, /The server is overloaded/);
    return true;
  });
  assert.deepEqual(texts, ['Hello']);
});

test('a whole answer decodes as a Message', T, async () => {
  const params = request('whole_tool_round_trip');
  const m = await client('whole_tool_round_trip').messages.create(params);
  assert.equal(m.type, 'message');
  assert.equal(m.model, params.model);
  assert.equal(m.stop_reason, 'end_turn');
  assert.equal(m.content[0].type, 'text');
  assert.equal(m.usage.input_tokens, 1024);
  assert.equal(m.usage.cache_read_input_tokens, 1024);
});
