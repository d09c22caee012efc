// Claude Code end to end (issue 12): the real CLI (npm `@anthropic-ai/claude-code`, a
// devDependency at an exact version), headless (`claude -p … --output-format json`), pointed at
// the gateway with ANTHROPIC_BASE_URL and a gateway key, answers one prompt through the
// gateway's inbound /v1/messages: passed through to an Anthropic provider (its mock), and
// translated to an OpenAI provider (the OpenAI mock). Claude Code sends what a plain SDK call
// does not: its `anthropic-beta` list, `?beta=true`, tools (one with `defer_loading`), system
// blocks with cache_control, thinking, context_management, output_config, metadata.user_id, and
// for a model it does not know (gpt-4o-mini here) a mid-conversation system message.
//
// Telemetry, error reporting, auto-updates and all non-essential traffic are off; HOME, the
// XDG dirs and CLAUDE_CONFIG_DIR are a fresh temp dir; the environment is not inherited. Every
// proxy variable points at a trap on 127.0.0.1 that records and refuses whatever tries to leave
// (NO_PROXY exempts 127.0.0.1, where the gateway is), so the test shows that the gateway is the
// only thing the CLI talks to. A CLI that cannot run fails the test; nothing is skipped.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { startStack, waitUntil, REPO_ROOT } from '../integration/harness.mjs';
import { AnthropicMock, DEFAULT_API_KEY as ANTHROPIC_KEY } from '../mock/anthropic_mock.mjs';
import { DEFAULT_REPLY } from '../mock/openai_mock.mjs';

const T = { timeout: 180_000 };
const CLAUDE = path.join(REPO_ROOT, 'node_modules', '.bin', 'claude');
const RUN_TIMEOUT_MS = 120_000;
const ANTHROPIC_MODEL = 'claude-sonnet-4-5-20250929';
const OPENAI_MODEL = 'gpt-4o-mini';

let s;
let anthropicMock;
let trap;
const escaped = []; // what tried to go anywhere but the gateway

/** An HTTP proxy that answers 403 to everything and records it. */
async function startTrap() {
  const server = http.createServer((req, res) => {
    escaped.push(`${req.method} ${req.url}`);
    res.writeHead(403, { connection: 'close' });
    res.end();
  });
  server.on('connect', (req, socket) => {
    escaped.push(`CONNECT ${req.url}`);
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

before(async () => {
  anthropicMock = new AnthropicMock();
  await anthropicMock.start();
  trap = await startTrap();
  s = await startStack({
    config: (mockUrl) => ({
      providers: [
        { name: 'mock', type: 'openai', base_url: mockUrl, api_key: { raw: '${MOCK_KEY}' } },
        { name: 'claude', type: 'anthropic', base_url: anthropicMock.baseUrl, api_key: ANTHROPIC_KEY },
      ],
      models: [
        // Named as Claude Code asks for them (--model).
        { name: ANTHROPIC_MODEL, provider: 'claude', upstream_model: ANTHROPIC_MODEL },
        { name: OPENAI_MODEL, provider: 'mock', upstream_model: 'gpt-4o-mini-2024-07-18' },
      ],
    }),
  });
});

after(async () => {
  await s?.close();
  await anthropicMock?.stop();
  await new Promise((resolve) => (trap ? trap.close(resolve) : resolve()));
});

/** Runs `claude ARGS` in a fresh home with only the gateway reachable; resolves {code, stdout, stderr}. */
function runClaude(args) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgw-claude-code-'));
  const proxy = `http://127.0.0.1:${trap.address().port}`;
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_CACHE_HOME: path.join(home, '.cache'),
    XDG_DATA_HOME: path.join(home, '.local', 'share'),
    XDG_STATE_HOME: path.join(home, '.local', 'state'),
    CLAUDE_CONFIG_DIR: path.join(home, '.claude'),
    ANTHROPIC_BASE_URL: s.gw.baseUrl.replace(/\/v1$/, ''),
    ANTHROPIC_API_KEY: s.key,
    DISABLE_TELEMETRY: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_BUG_COMMAND: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    HTTP_PROXY: proxy, HTTPS_PROXY: proxy, ALL_PROXY: proxy,
    http_proxy: proxy, https_proxy: proxy, all_proxy: proxy,
    NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost',
  };
  return new Promise((resolve, reject) => {
    const child = spawn(CLAUDE, args, { env, cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`claude could not be started (${CLAUDE}): ${e.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      fs.rmSync(home, { recursive: true, force: true });
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** One prompt, headless, JSON output: the parsed result line. */
async function ask(model, prompt) {
  const r = await runClaude(['-p', prompt, '--model', model, '--output-format', 'json', '--no-session-persistence']);
  const tail = `\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}\ngateway stderr: ${s.gw.stderr.slice(-2000)}`;
  assert.equal(r.code, 0, `claude exited with ${r.code ?? r.signal}${tail}`);
  let result;
  try {
    result = JSON.parse(r.stdout);
  } catch {
    assert.fail(`claude printed no JSON result${tail}`);
  }
  return { result, tail };
}

/** The gateway's usage rows of `model` (written in batches: waits for `n`). */
async function usageOf(model, n = 1) {
  let rows = [];
  await waitUntil(async () => {
    rows = (await s.gw.usageRows()).filter((r) => r.model === model);
    return rows.length >= n;
  }, 15_000, `${n} usage row(s) of ${model}`);
  return rows;
}

test('the Claude Code CLI is installed and runs', T, async () => {
  const r = await runClaude(['--version']);
  assert.equal(r.code, 0, `claude --version: ${r.code ?? r.signal} ${r.stderr}`);
  assert.match(r.stdout, /^\d+\.\d+\.\d+ \(Claude Code\)/);
});

test('claude -p → gateway /v1/messages → Anthropic provider (passed through): answered, usage recorded', T, async () => {
  anthropicMock.clearRequests();
  const { result, tail } = await ask(ANTHROPIC_MODEL, 'Say hello');
  assert.equal(result.type, 'result', tail);
  assert.equal(result.subtype, 'success', tail);
  assert.equal(result.is_error, false, tail);
  assert.equal(result.result, DEFAULT_REPLY);
  assert.ok(result.usage.output_tokens > 0, tail);

  // What reached Anthropic is Claude Code's own request, refused nowhere: the gateway passed
  // on its anthropic-beta list, which the body's beta members (context_management, a
  // deferred tool) need.
  const reqs = anthropicMock.recorded();
  assert.ok(reqs.length >= 1);
  for (const r of reqs) {
    assert.equal(r.path, '/v1/messages');
    assert.equal(r.status, 200, `Anthropic refused what the gateway sent: ${r.body_text.slice(0, 300)}`);
  }
  const main = reqs.find((r) => r.body?.tools?.length);
  assert.ok(main, 'Claude Code sent its tools');
  assert.match(main.headers['anthropic-beta'], /(^|,)claude-code-20250219(,|$)/);
  assert.match(main.headers['anthropic-beta'], /context-management-2025-06-27/);
  assert.equal(main.body.model, ANTHROPIC_MODEL);
  assert.equal(main.body.stream, true);
  assert.ok(main.body.context_management, 'context_management passed through');
  assert.ok(main.body.tools.some((t) => t.defer_loading === true), 'a deferred tool passed through');
  assert.ok(main.body.system.some((b) => b.cache_control?.type === 'ephemeral'));
  assert.equal(main.headers['x-api-key'], '[redacted]', 'the provider key, not the client\'s');
  assert.equal(main.api_key_ok, true);

  const rows = await usageOf(ANTHROPIC_MODEL, reqs.length);
  for (const row of rows) {
    assert.equal(row.status, 200);
    assert.equal(row.provider, 'claude');
    assert.equal(Number(row.stream), 1);
    assert.equal(Number(row.usage_reported), 1);
    assert.ok(Number(row.completion_tokens) > 0);
    assert.ok(Number(row.prompt_tokens) > 0);
    assert.equal(row.cost_status, 'exact');
  }
  assert.deepEqual(escaped, [], 'nothing but the gateway was contacted');
});

test('claude -p → gateway /v1/messages → OpenAI provider (translated both ways): answered, usage recorded', T, async () => {
  s.mock.clearRequests();
  const { result, tail } = await ask(OPENAI_MODEL, 'Say hello');
  assert.equal(result.subtype, 'success', tail);
  assert.equal(result.is_error, false, tail);
  assert.equal(result.result, DEFAULT_REPLY);

  const reqs = s.mock.recorded();
  assert.ok(reqs.length >= 1);
  for (const r of reqs) {
    assert.equal(r.path, '/v1/chat/completions');
    assert.equal(r.status, 200, r.body_text.slice(0, 300));
  }
  const body = JSON.parse(reqs.at(-1).body_text);
  assert.equal(body.model, 'gpt-4o-mini-2024-07-18');
  assert.equal(body.stream, true);
  assert.deepEqual(body.stream_options, { include_usage: true });
  assert.equal(body.messages[0].role, 'system');
  // Claude Code tells a model it does not know about its environment in a system message
  // after the user's turn: it stays a system message, in place.
  assert.ok(body.messages.slice(1).some((m) => m.role === 'system'), JSON.stringify(body.messages.map((m) => m.role)));
  assert.ok(body.tools.length > 0);
  assert.ok(body.tools.every((t) => t.type === 'function'));

  const rows = await usageOf(OPENAI_MODEL, reqs.length);
  for (const row of rows) {
    assert.equal(row.status, 200);
    assert.equal(row.provider, 'mock');
    assert.equal(Number(row.usage_reported), 1);
    assert.ok(Number(row.prompt_tokens) > 0);
    assert.equal(Number(row.completion_tokens), 9, 'the mock\'s reply is 9 tokens');
    assert.equal(row.cost_status, 'exact');
  }
  assert.deepEqual(escaped, [], 'nothing but the gateway was contacted');
});
