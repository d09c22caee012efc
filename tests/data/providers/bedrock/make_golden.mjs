// Writes the generated parts of the bedrock golden cases beside this file:
//  - upstream_response.bin of each stream case: ConverseStream frames built with the Bedrock
//    mock's event-stream encoder (tests/mock/bedrock_mock.mjs, checked with the AWS SDK);
//  - the SigV4 headers (X-Amz-Security-Token, Authorization) of upstream_request.json for cases
//    whose provider signs, computed with the mock's own SigV4 verifier over the expected body
//    (JSON.stringify of upstream_request.json's body: the bytes the adapter must send).
// Run: node tests/data/providers/bedrock/make_golden.mjs   (Node.js 20, no packages)

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { encodeFrame, eventFrame, exceptionFrame, sigv4Expected } from '../../../mock/bedrock_mock.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

const start = () => eventFrame('messageStart', { role: 'assistant', p: 'abcdefgh' });
const text = (i, t) => eventFrame('contentBlockDelta', { contentBlockIndex: i, delta: { text: t }, p: 'abc' });
const stop = (i) => eventFrame('contentBlockStop', { contentBlockIndex: i });
const toolStart = (i, toolUseId, name) =>
  eventFrame('contentBlockStart', { contentBlockIndex: i, start: { toolUse: { toolUseId, name } } });
const toolInput = (i, input) => eventFrame('contentBlockDelta', { contentBlockIndex: i, delta: { toolUse: { input } } });
const reasoning = (i, r) => eventFrame('contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: r } });
const messageStop = (stopReason) => eventFrame('messageStop', { stopReason });
const metadata = (usage) => eventFrame('metadata', { usage, metrics: { latencyMs: 250 } });

function corrupt(frame) {
  const f = Buffer.from(frame);
  f[f.length - 1] ^= 0xff;  // the message CRC
  return f;
}

const streams = {
  stream_text: [start(), text(0, 'Hello'), text(0, '!'), text(0, ' How can I help?'), stop(0),
    messageStop('end_turn'), metadata({ inputTokens: 12, outputTokens: 7, totalTokens: 19 })],
  stream_text_no_usage_chunk: [start(), text(0, 'Hello'), text(0, '!'), stop(0), messageStop('max_tokens'),
    metadata({ inputTokens: 12, outputTokens: 2, totalTokens: 14 })],
  stream_tools: [start(), text(0, "I'll check."), stop(0),
    toolStart(1, 'tooluse_w1', 'get_weather'), toolInput(1, '{"city":'), toolInput(1, '"Paris"}'), stop(1),
    toolStart(2, 'tooluse_t2', 'get_time'), toolInput(2, '{"tz":"CET"}'), stop(2), messageStop('tool_use'),
    metadata({ inputTokens: 20, outputTokens: 25, totalTokens: 1545, cacheReadInputTokens: 1000,
      cacheWriteInputTokens: 500 })],
  stream_reasoning: [start(), reasoning(0, { text: 'The user greets me.' }), reasoning(0, { text: ' Be polite.' }),
    reasoning(0, { signature: 'c2lnbmF0dXJl' }), stop(0), text(1, 'Hello!'), stop(1), messageStop('end_turn'),
    metadata({ inputTokens: 9, outputTokens: 14, totalTokens: 23 })],
  stream_exception_throttling: [start(), text(0, 'Hel'),
    exceptionFrame('throttlingException', { message: 'Too many requests, please wait before trying again.' }),
    text(0, 'lo')],
  stream_exception_model_stream_error: [start(), text(0, 'Hel'),
    exceptionFrame('modelStreamErrorException', { message: 'Model stream error (forced by mock).',
      originalStatusCode: 500, originalMessage: 'upstream model failed' })],
  stream_exception_validation: [start(),
    exceptionFrame('validationException', { message: 'The input fails to satisfy the constraints specified by Amazon Bedrock.' })],
  stream_error_frame: [start(), text(0, 'Hel'),
    encodeFrame({ ':error-code': 'InternalFailure', ':error-message': 'An internal error occurred.',
      ':message-type': 'error' })],
  stream_bad_crc: [start(), text(0, 'Hello'), corrupt(text(0, ' world')), stop(0), messageStop('end_turn'),
    metadata({ inputTokens: 5, outputTokens: 2, totalTokens: 7 })],
  stream_garbage: [Buffer.from('<html><body>502 Bad Gateway</body></html>\n')],
  stream_bad_event_json: [start(), encodeFrame({ ':event-type': 'contentBlockDelta', ':content-type': 'application/json',
    ':message-type': 'event' }, '{"contentBlockIndex":0,"delta":{"text":"Hel')],
  stream_truncated: [start(), text(0, 'Hello'), text(0, ' world').subarray(0, 20)],
  stream_unknown_event: [start(), text(0, 'Hello'),
    eventFrame('someFutureEvent', { anything: [1, 2, 3] }), stop(0), messageStop('end_turn'),
    metadata({ inputTokens: 5, outputTokens: 1, totalTokens: 6 })],
  stream_no_metadata: [start(), text(0, 'Hello'), stop(0), messageStop('end_turn')],
};

for (const [name, frames] of Object.entries(streams)) {
  fs.writeFileSync(path.join(here, name, 'upstream_response.bin'), Buffer.concat(frames));
}

/** The Host header the adapter signs: core::Origin's host_header (host[:port] as written). */
function hostHeader(baseUrl, region) {
  return baseUrl ? new URL(baseUrl).host : `bedrock-runtime.${region}.amazonaws.com`;
}

for (const name of fs.readdirSync(here)) {
  const dir = path.join(here, name);
  if (!fs.statSync(dir).isDirectory()) continue;
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8'));
  const keyId = c.provider.settings?.aws_access_key_id;
  const reqFile = path.join(dir, 'upstream_request.json');
  if (!keyId || !fs.existsSync(reqFile)) continue;
  const up = JSON.parse(fs.readFileSync(reqFile, 'utf8'));
  const region = c.provider.settings.region;
  const token = c.provider.secrets.aws_session_token;
  const amzDate = new Date(c.call.now * 1000).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const body = JSON.stringify(up.body);
  const headerPairs = [['content-type', 'application/json'], ['host', hostHeader(c.provider.base_url, region)],
    ['x-amz-date', amzDate]];
  if (token) headerPairs.push(['x-amz-security-token', token]);
  const signedHeaders = headerPairs.map(([n]) => n);
  const scope = `${amzDate.slice(0, 8)}/${region}/bedrock/aws4_request`;
  const auth = { date: amzDate.slice(0, 8), region, service: 'bedrock', scope, signedHeaders,
    signedHeadersText: signedHeaders.join(';') };
  const exp = sigv4Expected({ method: 'POST', rawPath: up.target, headerPairs,
    payloadHash: crypto.createHash('sha256').update(body).digest('hex'), auth, amzDate,
    secretAccessKey: c.provider.secrets.aws_secret_access_key });
  up.headers['X-Amz-Date'] = amzDate;
  up.headers['X-Amz-Security-Token'] = token ?? null;
  up.headers.Authorization =
    `AWS4-HMAC-SHA256 Credential=${keyId}/${scope}, SignedHeaders=${auth.signedHeadersText}, Signature=${exp.signature}`;
  fs.writeFileSync(reqFile, `${JSON.stringify(up, null, 2)}\n`);
}
