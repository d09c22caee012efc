// Writes the static Anthropic and Bedrock answers that bench/run.sh's translated targets get
// from the peers.sh mock (see bench/README.md, "Translated providers"):
//
//   anthropic.json         Messages API answer                  (POST /v1/messages)
//   anthropic_stream.sse   Messages API stream, text/event-stream (same, "stream": true)
//   bedrock.json           Converse answer                      (POST /model/{id}/converse)
//   bedrock_stream.bin     ConverseStream answer, application/vnd.amazon.eventstream
//                          (binary frames, prelude and message CRC32)
//
// They say what the OpenAI mock of bench/peers.sh says, so that the translated targets compare
// fairly with the passthrough: the same text (the stream cut into the same pieces), the same
// token counts and finish reason. Both OpenAI payloads are taken from peers.sh itself (its
// MOCK_JSON and sse_events, evaluated by bash), the provider shapes from the repository's
// mocks (tests/mock/anthropic_mock.mjs and bedrock_mock.mjs, checked against the providers'
// SDKs), whose encoders are imported here.
//
//   node bench/data/generate.mjs           (re)write the four files beside this script
//   node bench/data/generate.mjs --check   exit 1 when a file differs from what would be written
//
// Node.js 20, no dependencies. Never edit the outputs by hand (the .bin least of all).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { messageBody, streamEvents as anthropicEvents, sseEvent } from '../../tests/mock/anthropic_mock.mjs';
import { converseBody, streamEvents as bedrockEvents, eventFrame, decodeFrames } from '../../tests/mock/bedrock_mock.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PEERS = path.join(HERE, '..', 'peers.sh');

/** Upstream model ids; bench/mock_config.sh routes the bench models to them. */
const ANTHROPIC_MODEL = 'claude-haiku-4-5-20251001';
const ANTHROPIC_ID = 'msg_01BENCHa1b2c3d4e5f6g7h8i9j0';
const BEDROCK_LATENCY_MS = 42;
/** Bedrock pads each stream event with a filler member `p`; the mock's rule, kept short. */
const PADDING = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const FINISH = { stop: 'end_turn', length: 'max_tokens' };

/** The OpenAI mock's JSON answer and SSE events, as peers.sh defines them. */
function openaiMock() {
  const script = `set -euo pipefail
eval "$(sed -n -e "/^MOCK_JSON='/p" -e '/^sse_events() {/,/^}/p' "$1")"
printf '%s\\n' "$MOCK_JSON"
sse_events`;
  const lines = execFileSync('bash', ['-c', script, 'extract', PEERS], { encoding: 'utf8' }).split('\n');
  const answer = JSON.parse(lines[0]);
  const chunks = lines.slice(1).filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)));
  if (!lines.includes('data: [DONE]') || chunks.length === 0) throw new Error('peers.sh: no SSE events found');
  return { answer, chunks };
}

function plan() {
  const { answer, chunks } = openaiMock();
  const choice = answer.choices[0];
  const pieces = chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content ?? '')).filter((t) => t !== '');
  const streamUsage = chunks.findLast((c) => c.usage)?.usage;
  const streamFinish = chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).findLast((f) => f);
  if (!FINISH[choice.finish_reason] || !FINISH[streamFinish] || !streamUsage) {
    throw new Error('peers.sh: unexpected mock (finish reason or stream usage)');
  }
  return {
    json: { text: choice.message.content, stop: FINISH[choice.finish_reason],
      input: answer.usage.prompt_tokens, output: answer.usage.completion_tokens },
    stream: { pieces, stop: FINISH[streamFinish], input: streamUsage.prompt_tokens, output: streamUsage.completion_tokens },
  };
}

function anthropicPlan(p, pieces) {
  return {
    id: ANTHROPIC_ID, model: ANTHROPIC_MODEL, stopReason: p.stop, stopSequence: null,
    inputTokens: p.input, outputTokens: p.output, cacheRead: 0, cacheWrite5m: 0, cacheWrite1h: 0,
    blocks: [{ final: { type: 'text', text: pieces.join('') }, start: { type: 'text', text: '' },
      deltas: pieces.map((text) => ({ type: 'text_delta', text })) }],
  };
}

function bedrockPlan(p, pieces) {
  return {
    blocks: [{ kind: 'text', pieces }], stopReason: p.stop,
    usage: { inputTokens: p.input, outputTokens: p.output, totalTokens: p.input + p.output },
    metrics: { latencyMs: BEDROCK_LATENCY_MS },
  };
}

const DOLLAR = 0x24;

/**
 * An event frame with Bedrock's filler member `p` (the mock's length rule), lengthened while
 * the frame's binary prelude or CRCs hold a '$' byte (see the check in outputs()).
 */
function paddedFrame(type, payload, n) {
  for (let extra = 0; extra < PADDING.length; extra++) {
    const frame = eventFrame(type, { ...payload, p: PADDING.slice(0, 1 + ((n * 7 + extra) % PADDING.length)) });
    if (!frame.includes(DOLLAR)) return frame;
  }
  throw new Error(`no padding keeps a '$' out of frame ${n}`);
}

function outputs() {
  const { json, stream } = plan();
  const files = {
    'anthropic.json': JSON.stringify(messageBody(anthropicPlan(json, [json.text]))),
    'anthropic_stream.sse': anthropicEvents(anthropicPlan(stream, stream.pieces)).map(([n, d]) => sseEvent(n, d)).join(''),
    'bedrock.json': JSON.stringify(converseBody(bedrockPlan(json, [json.text]))),
    'bedrock_stream.bin': Buffer.concat(bedrockEvents(bedrockPlan(stream, stream.pieces)).map(([type, payload], n) =>
      paddedFrame(type, payload, n))),
  };
  // bench/mock_config.sh writes the answers into nginx's config (return 200 '...'), where
  // nothing can escape a '$'
  for (const [name, body] of Object.entries(files)) {
    if (Buffer.from(body).includes(DOLLAR)) throw new Error(`${name}: a '$' cannot go into nginx's config`);
  }
  decodeFrames(files['bedrock_stream.bin']);   // throws on a bad frame or CRC
  return files;
}

const check = process.argv.includes('--check');
let stale = 0;
for (const [name, body] of Object.entries(outputs())) {
  const file = path.join(HERE, name);
  if (check) {
    let old = null;
    try { old = readFileSync(file); } catch { /* missing */ }
    if (old === null || !old.equals(Buffer.from(body))) {
      process.stderr.write(`${file}: out of date (run node bench/data/generate.mjs)\n`);
      stale++;
    }
  } else {
    writeFileSync(file, body);
    process.stdout.write(`wrote ${file} (${Buffer.byteLength(body)} bytes)\n`);
  }
}
process.exit(stale ? 1 : 0);
