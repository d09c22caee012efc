// Parser-differential suite: what the gateway acts on must be what the provider parses.
//
// A corpus of tricky chat bodies (keys written with escapes and repeated at each level, `\/`
// and surrogate pairs in values, deep nesting, huge numbers, a byte-order mark, bytes after the
// object, invalid UTF-8) goes through the running gateway to the mock upstream. The bytes the
// mock received are parsed again with tests/integration/strict_json.mjs, a strict parser
// independent of the gateway's (Boost.JSON) and of the mock's (V8). For every body, either
// the gateway refused it (a 4xx with OpenAI's error shape, nothing forwarded), or:
//   - the forwarded body is strict JSON with no repeated key at the top level or in
//     stream_options, and its model is the upstream name of the model the key is allowed;
//   - the usage row (model, upstream model, stream flag) and the cost (header and row, at the
//     allowed model's price) are those of what the mock parsed;
//   - the token limits the gateway acted on (its TPM estimate, seen in
//     x-ratelimit-remaining-tokens: prompt bytes / 4 + max output × n) are what the mock parsed.
// The key may use only `model-a`; no body in the corpus makes the provider run `model-b`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, request, waitUntil, dec } from './harness.mjs';
import { parseStrict } from './strict_json.mjs';

const T = { timeout: 300_000 };
const TPM = 1_000_000_000_000;
const PRICE_A = { input: dec('1') / 1_000_000n, output: dec('2') / 1_000_000n };

const config = (baseUrl) => ({
  providers: [{ name: 'mock', type: 'openai', base_url: baseUrl, api_key: { raw: '${MOCK_KEY}' } }],
  models: [
    { name: 'model-a', provider: 'mock', upstream_model: 'upstream-a', pricing_model: 'price-a' },
    { name: 'model-b', provider: 'mock', upstream_model: 'upstream-b', pricing_model: 'price-b' },
  ],
  prices: [
    { model: 'price-a', components: { raw:
      '[{direction: "input", unit: "1m_tokens", price: "1"}, {direction: "output", unit: "1m_tokens", price: "2"}]' } },
    { model: 'price-b', components: { raw:
      '[{direction: "input", unit: "1m_tokens", price: "100"}, {direction: "output", unit: "1m_tokens", price: "200"}]' } },
  ],
});

const MSGS = '[{"role":"user","content":"hi [mock:prompt_tokens=100] [mock:completion_tokens=20]"}]';
const obj = (members) => `{${members.join(',')}}`;
const M = (v) => `"model":${v}`;
const A = M('"model-a"');
const B = M('"model-b"');
const MSG = `"messages":${MSGS}`;

// [label, body (string or Buffer), expected status, substring of the error message]
const CORPUS = [
  ['plain', obj([A, MSG]), 200],
  ['whitespace everywhere', ` {\n\t"model" :\r\n "model-a" ,  "messages" : ${MSGS} }\n`, 200],
  ['escaped model key', obj(['"mod\\u0065l":"model-a"', MSG]), 200],
  ['fully escaped key and value', obj(['"\\u006d\\u006f\\u0064\\u0065\\u006c":"\\u006d\\u006f\\u0064\\u0065\\u006c\\u002d\\u0061"', MSG]), 200],
  ['escaped value', obj([M('"model\\u002da"'), MSG]), 200],
  ['model repeated, same value', obj([A, MSG, A]), 400, "Duplicate key 'model'"],
  ['model repeated, escaped second (B last)', obj([A, '"mod\\u0065l":"model-b"', MSG]), 400, "Duplicate key 'model'"],
  ['model repeated, escaped first (A last)', obj(['"mod\\u0065l":"model-b"', MSG, A]), 400, "Duplicate key 'model'"],
  ['model repeated, upstream name', obj([A, M('"upstream-b"'), MSG]), 400, "Duplicate key 'model'"],
  ['model B', obj([B, MSG]), 403, 'not allowed'],
  ['model B escaped', obj([M('"model\\u002db"'), MSG]), 403, 'not allowed'],
  ['upstream name of B', obj([M('"upstream-b"'), MSG]), 404, 'does not exist'],
  ['model with a NUL', obj([M('"model-a\\u0000"'), MSG]), 404, 'does not exist'],
  ['a key that only looks like model', obj([A, '"model\\u0000":"model-b"', '"Model":"model-b"', MSG]), 200],
  ['model inside messages', obj([A, '"messages":[{"role":"user","content":"x","model":"model-b"}]']), 200],
  ['repeated key inside a message (the provider\'s to judge)', obj([A, '"messages":[{"role":"user","role":"user","content":"x"}]']), 200],
  ['messages repeated', obj([A, MSG, MSG]), 400, "Duplicate key 'messages'"],
  ['stream repeated', obj([A, MSG, '"stream":false', '"str\\u0065am":true']), 400, "Duplicate key 'stream'"],
  ['escaped stream key', obj([A, MSG, '"str\\u0065am":true']), 200],
  ['stream_options repeated', obj([A, MSG, '"stream":true', '"stream_options":{"include_usage":true}', '"stream_options":{}']), 400, "Duplicate key 'stream_options'"],
  ['include_usage repeated', obj([A, MSG, '"stream":true', '"stream_options":{"include_usage":false,"include\\u005fusage":true}']), 400, "Duplicate key 'stream_options.include_usage'"],
  ['escaped stream_options key', obj([A, MSG, '"stream":true', '"stream\\u005foptions":{"include_usage":false}']), 200],
  ['escaped include_usage key', obj([A, MSG, '"stream":true', '"stream_options":{"include\\u005fusage":true}']), 200],
  ['stream_options null', obj([A, MSG, '"stream":true', '"stream_options":null']), 200],
  ['max_tokens', obj([A, MSG, '"max_tokens":321']), 200],
  ['max_tokens repeated', obj([A, MSG, '"max_tokens":1', '"max_tokens":100000']), 400, "Duplicate key 'max_tokens'"],
  ['escaped max_tokens key', obj([A, MSG, '"max_\\u0074okens":100000']), 200],
  ['max_completion_tokens wins over max_tokens', obj([A, MSG, '"max_tokens":5', '"max_completion_tokens":77']), 200],
  ['n', obj([A, MSG, '"max_tokens":10', '"n":3']), 200],
  ['escaped n key', obj([A, MSG, '"max_tokens":10', '"\\u006e":4']), 200],
  ['n repeated', obj([A, MSG, '"n":1', '"\\u006e":50']), 400, "Duplicate key 'n'"],
  ['max_tokens as a float', obj([A, MSG, '"max_tokens":100.0']), 400, "'max_tokens'"],
  ['max_tokens with an exponent', obj([A, MSG, '"max_tokens":1e3']), 400, "'max_tokens'"],
  ['max_tokens huge', obj([A, MSG, '"max_tokens":123456789012345678901234567890']), 400, "'max_tokens'"],
  ['max_tokens negative', obj([A, MSG, '"max_tokens":-1']), 400, "'max_tokens'"],
  ['n zero', obj([A, MSG, '"n":0']), 400, "'n'"],
  ['service_tier repeated', obj([A, MSG, '"service_tier":"flex"', '"service\\u005ftier":"priority"']), 400, "Duplicate key 'service_tier'"],
  ['any key repeated', obj([A, MSG, '"temperature":0', '"temperature":2']), 400, "Duplicate key 'temperature'"],
  ['huge number elsewhere', obj([A, MSG, '"seed":123456789012345678901234567890', '"temperature":1e-400']), 200],
  ['escaped solidus and surrogate pair in values', obj([A, '"messages":[{"role":"user","content":"a\\/b \\ud83d\\ude00 [mock:prompt_tokens=100]"}]']), 200],
  ['raw UTF-8 in values', obj([A, '"messages":[{"role":"user","content":"héllo 😀 中文"}]']), 200],
  ['lone surrogate escape', obj([A, '"messages":[{"role":"user","content":"\\ud800"}]']), 400],
  ['nesting 60 deep', obj([A, MSG, `"metadata":${'['.repeat(60)}${']'.repeat(60)}`]), 200],
  ['nesting 70 deep', obj([A, MSG, `"metadata":${'['.repeat(70)}${']'.repeat(70)}`]), 400],
  ['byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(obj([A, MSG]))]), 400],
  ['bytes after the object', `${obj([A, MSG])}x`, 400],
  ['a second object after the first', `${obj([A, MSG])}${obj([B, MSG])}`, 400],
  ['whitespace after the object', `${obj([A, MSG])}\r\n\t `, 200],
  ['NUL after the object', `${obj([A, MSG])}\u0000`, 400],
  ['invalid UTF-8 in a value', Buffer.concat([Buffer.from(`{${A},"messages":[{"role":"user","content":"`), Buffer.from([0xff, 0xfe]), Buffer.from('"}]}')]), 400],
  ['overlong UTF-8 in a value', Buffer.concat([Buffer.from(`{${A},"messages":[{"role":"user","content":"`), Buffer.from([0xc0, 0xaf]), Buffer.from('"}]}')]), 400],
  ['UTF-8 encoded surrogate in a key', Buffer.concat([Buffer.from(`{${A},${MSG},"`), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('":1}')]), 400],
  ['trailing comma', `{${A},${MSG},}`, 400],
  ['comment', `{${A},${MSG} /* x */}`, 400],
];

let s; // {mock, gw}

before(async () => {
  s = await startStack({ config, keys: {}, mockOptions: { anyModel: true },
    env: { LLMGW_USAGE_FLUSH_MS: '20' } });
});

after(async () => {
  await s?.close();
});

test('every corpus body is refused or acted on exactly as the provider parses it', T, async () => {
  const seenUpstream = new Set();
  let i = 0;
  for (const [label, raw, expected, message] of CORPUS) {
    const ctx = `#${i} ${label}`;
    // A fresh key per body: its TPM window shows this call's estimate alone.
    const { key } = await s.gw.createKey(`diff-${i}`, { models: ['model-a'], tpm: TPM });
    const rid = `diff-${i++}`;
    const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'utf8');
    s.mock.clearRequests();
    const res = await request(s.gw.port, { method: 'POST', path: '/v1/chat/completions', body: bytes,
      headers: { authorization: `Bearer ${key}`, 'x-request-id': rid } });
    const forwarded = s.mock.recorded().filter((r) => r.path.startsWith('/v1/'));
    for (const f of forwarded) {
      seenUpstream.add(parseStrict(Buffer.from(f.body_base64, 'base64')).value.model);
    }
    assert.equal(res.status, expected, `${ctx}: ${res.text}`);
    if (expected !== 200) {
      assert.equal(typeof res.json?.error?.message, 'string', `${ctx}: OpenAI error shape: ${res.text}`);
      if (message) assert.ok(res.json.error.message.includes(message), `${ctx}: ${res.json.error.message}`);
      assert.equal(forwarded.length, 0, `${ctx}: a refused body must not reach the provider`);
      continue;
    }

    assert.equal(forwarded.length, 1, `${ctx}: one upstream request`);
    const sent = Buffer.from(forwarded[0].body_base64, 'base64');
    const parsed = parseStrict(sent); // throws on anything a strict parser refuses
    const p = parsed.value;
    const repeated = parsed.duplicates.filter((d) => !d.includes('.') || d.startsWith('stream_options.'));
    assert.deepEqual(repeated, [], `${ctx}: the forwarded body repeats a key the gateway reads`);
    assert.equal(p.model, 'upstream-a', `${ctx}: the provider must run the allowed model`);
    const stream = p.stream === true;
    if (stream) {
      assert.equal(p.stream_options?.include_usage, true, `${ctx}: the gateway asks for usage`);
    }

    const rows = await waitUntil(async () => {
      const r = await s.gw.usageFor(rid);
      return r.length > 0 ? r : null;
    }, 5_000, `${ctx}: usage row`);
    assert.equal(rows.length, 1, ctx);
    const row = rows[0];
    assert.equal(row.model, 'model-a', ctx);
    assert.equal(row.upstream_model, p.model, ctx);
    assert.equal(Boolean(Number(row.stream)), stream, `${ctx}: the stream flag acted on`);
    assert.equal(row.pricing_model, 'price-a', ctx);
    const cost = BigInt(row.prompt_tokens) * PRICE_A.input + BigInt(row.completion_tokens) * PRICE_A.output;
    assert.equal(dec(row.cost_usd), cost, `${ctx}: priced at model-a's price`);
    if (!stream) assert.equal(dec(res.headers['x-llmgw-cost-usd']), cost, `${ctx}: cost header`);

    // The TPM estimate: client body bytes / 4 + max output × n, from the provider's reading.
    const maxOut = p.max_completion_tokens ?? p.max_tokens ?? 0;
    const n = p.n ?? 1;
    const estimate = Math.floor(bytes.length / 4) + Number(maxOut) * Number(n);
    assert.equal(Number(res.headers['x-ratelimit-remaining-tokens']), TPM - estimate,
      `${ctx}: the token limits the gateway acted on (max output ${maxOut}, n ${n})`);
  }
  assert.deepEqual([...seenUpstream], ['upstream-a'], 'no body made the provider run another model');
});
