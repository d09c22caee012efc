// No secret leaves the gateway: every secret this test plants — gateway API keys, the OpenAI,
// Anthropic and Gemini provider keys, the Bedrock provider's and the S3 archive's AWS secret
// keys and session tokens, two Vertex service-account private keys and the access tokens the
// gateway got for them, the master key, the admin JWT secret, the admin password, the admin
// JWTs and a service token, METRICS_TOKEN — is searched for in the gateway's logs (stdout and
// stderr at debug level), a /metrics scrape, every archived audit record (S3, s3rver), the
// usage rows, and every answer the test received (status line, headers and body, errors and
// admin answers included), after a load that takes every exit path: answers (JSON and
// streams) from each provider type, refusals by authentication (wrong keys, near misses of
// real ones), permission, routing, rate limit and budget, upstream 401/429/500, bodies that
// are not JSON, admin calls with good and bad credentials, providers created and updated with
// secrets. Searched for: each secret whole, JSON-escaped, in base64, base64url and percent
// encoding, and every 12-character piece of what follows its well-known prefix (sk-, sk-ant-,
// AIza, …). The only answers allowed to hold a secret are those that issue it (a created key,
// a sign-in's JWT, a created service token), and those only that one.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

import {
  OpenAIMock, startGateway, request, stream, chatBody, authHeaders, adminRequest, adminLoginRaw,
  waitUntil, signJwt, jwtClaims, freePort, rawExchange, rawRequest,
} from './harness.mjs';
import { startS3 } from './s3.mjs';
import { RedisServer } from './services.mjs';
import { AnthropicMock } from '../mock/anthropic_mock.mjs';
import { BedrockMock } from '../mock/bedrock_mock.mjs';
import { GeminiMock } from '../mock/gemini_mock.mjs';
import { VertexMock, DEFAULT_PROJECT } from '../mock/vertex_mock.mjs';

const T = { timeout: 240_000 };
const WINDOW = 12; // characters of a secret's random part that count as a leak
const MAX_BODY_BYTES = 65_536;

/** `n` random letters and digits (no '-' or '_', so a secret is one "word"). */
const alnum = (n) => crypto.randomBytes(n * 2).toString('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, n);
const upper = (n) => alnum(n * 3).replace(/[^A-Z0-9]/g, '').padEnd(n, 'Q').slice(0, n).toUpperCase();

// Planted secrets. `core` is the part after a well-known, non-secret prefix.
const S = {
  openaiKey: `sk-proj-${alnum(48)}`,
  openaiWrongKey: `sk-proj-${alnum(48)}`, // a provider set up with a key the upstream refuses
  anthropicKey: `sk-ant-api03-${alnum(64)}`,
  geminiKey: `AIza${alnum(35)}`,
  bedrockSecret: `${alnum(18)}/${alnum(12)}+${alnum(9)}`,
  bedrockSessionToken: `IQoJb3JpZ2luX2Vj${alnum(120)}/${alnum(40)}==`,
  s3Secret: `${alnum(20)}+${alnum(10)}/${alnum(9)}`,
  s3SessionToken: `FwoGZXIvYXdzE${alnum(100)}+${alnum(30)}`,
  masterKey: crypto.randomBytes(32).toString('hex'),
  jwtSecret: `jwt-secret-${alnum(40)}`,
  adminPassword: `pw ${alnum(24)} staple`,
  metricsToken: `mt-${alnum(40)}`,
};
const WELL_KNOWN = /^(rp-|sk-llmgw-|sk-proj-|sk-ant-api03-|sk-|AIza|IQoJb3JpZ2luX2Vj|FwoGZXIvYXdzE|ya29\.c\.mock-|mt-|jwt-secret-|pw )/;
const bedrockKeyId = `ASIA${upper(16)}`;
const s3KeyId = `ASIA${upper(16)}`;

let openai;
let anthropic;
let gemini;
let bedrock;
let vertex;
let s3;
let gw;
let serviceAccount; // the config file's Vertex key (the file)
let adminServiceAccount; // the admin API's Vertex key (credentials_json)
const dynamic = {}; // secrets the gateway issues during the run: name → value
const answers = []; // {label, text, allow: [secret names]}

before(async () => {
  openai = new OpenAIMock({ apiKey: S.openaiKey });
  anthropic = new AnthropicMock({ apiKey: S.anthropicKey });
  gemini = new GeminiMock({ apiKey: S.geminiKey });
  bedrock = new BedrockMock({ apiKey: null, credentials: [{ accessKeyId: bedrockKeyId,
    secretAccessKey: S.bedrockSecret, sessionToken: S.bedrockSessionToken }] });
  vertex = new VertexMock({ accessToken: null });
  for (const m of [openai, anthropic, gemini, bedrock, vertex]) await m.start();
  s3 = await startS3({ credentials: { accessKeyId: s3KeyId, secretAccessKey: S.s3Secret,
    sessionToken: S.s3SessionToken } });
  const sa = vertex.writeServiceAccountFile();
  const deadPort = await freePort(); // nothing listens there
  serviceAccount = sa.json;
  adminServiceAccount = vertex.createServiceAccount();

  const config = {
    providers: [
      { name: 'oai', type: 'openai', base_url: openai.baseUrl, api_key: { raw: '${T_OPENAI_KEY}' } },
      { name: 'oai-wrong', type: 'openai', base_url: openai.baseUrl, api_key: { raw: '${T_OPENAI_WRONG_KEY}' } },
      { name: 'oai-slow', type: 'openai', base_url: openai.baseUrl, api_key: { raw: '${T_OPENAI_KEY}' },
        first_byte_timeout_ms: 300 },
      { name: 'oai-dead', type: 'openai', base_url: `http://127.0.0.1:${deadPort}/v1`,
        api_key: { raw: '${T_OPENAI_KEY}' }, connect_timeout_ms: 2000 },
      { name: 'claude', type: 'anthropic', base_url: anthropic.baseUrl, api_key: { raw: '${T_ANTHROPIC_KEY}' } },
      { name: 'gem', type: 'gemini', base_url: gemini.baseUrl, api_key: { raw: '${T_GEMINI_KEY}' } },
      { name: 'bed', type: 'bedrock', base_url: bedrock.url, region: 'us-east-1',
        aws_access_key_id: bedrockKeyId, aws_secret_access_key: { raw: '${T_BEDROCK_SECRET}' },
        aws_session_token: { raw: '${T_BEDROCK_TOKEN}' } },
      { name: 'vtx', type: 'vertex', base_url: vertex.baseUrl, project: DEFAULT_PROJECT,
        location: 'us-central1', credentials_file: sa.path },
    ],
    models: [
      { name: 'gpt', provider: 'oai', upstream_model: 'gpt-4o-mini' },
      { name: 'embed', provider: 'oai', upstream_model: 'text-embedding-3-small' },
      { name: 'gpt-wrong', provider: 'oai-wrong', upstream_model: 'gpt-4o-mini' },
      { name: 'gpt-slow', provider: 'oai-slow', upstream_model: 'gpt-4o-mini' },
      { name: 'gpt-dead', provider: 'oai-dead', upstream_model: 'gpt-4o-mini' },
      { name: 'held', provider: 'oai', upstream_model: 'gpt-4o-mini', pricing_model: 'held-prices' },
      { name: 'claude', provider: 'claude', upstream_model: 'claude-sonnet-4-20250514' },
      { name: 'gem', provider: 'gem', upstream_model: 'gemini-2.5-flash' },
      { name: 'bed', provider: 'bed', upstream_model: 'us.anthropic.claude-sonnet-4-20250514-v1:0' },
      { name: 'vtx-gemini', provider: 'vtx', upstream_model: 'gemini-2.5-flash' },
      { name: 'vtx-claude', provider: 'vtx', upstream_model: 'claude-sonnet-4@20250514' },
    ],
    prices: [{ model: 'held-prices', components: { raw:
      '[{direction: "input", unit: "1m_tokens", price: "1"}, {direction: "output", unit: "1m_tokens", price: "1000"}]' } }],
  };
  gw = await startGateway({ config, serve: false, keys: { main: {} }, env: {
    ...s3.env,
    T_OPENAI_KEY: S.openaiKey,
    T_OPENAI_WRONG_KEY: S.openaiWrongKey,
    T_ANTHROPIC_KEY: S.anthropicKey,
    T_GEMINI_KEY: S.geminiKey,
    T_BEDROCK_SECRET: S.bedrockSecret,
    T_BEDROCK_TOKEN: S.bedrockSessionToken,
    LLMGW_MASTER_KEY: S.masterKey,
    ADMIN_JWT_SECRET: S.jwtSecret,
    METRICS_TOKEN: S.metricsToken,
    LOG_LEVEL: 'debug',
    LLMGW_MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    LOGGING_BODIES: 'full',
    LOGGING_SINK_FLUSH_INTERVAL: '1s',
    LOGGING_SINK_FLUSH_SIZE: '20',
    POD_NAME: 'secrets-pod',
  } });
  await gw.createAdminUser('root@secrets.test', S.adminPassword, { role: 'admin' });
  await gw.serve({ threads: 2 });
  dynamic.mainKey = gw.keys.main.key;
});

after(async () => {
  await gw?.cleanup();
  for (const m of [openai, anthropic, gemini, bedrock, vertex]) await m?.stop();
  await s3?.close();
});

// ---------------------------------------------------------------------------------------------
// Talking to the gateway; every answer is kept.

const headerText = (headers) => Object.entries(headers ?? {}).map(([k, v]) => `${k}: ${v}`).join('\n');

function keep(label, r, allow = []) {
  answers.push({ label, text: `${r.status}\n${headerText(r.headers)}\n\n${r.text ?? r.raw ?? ''}`, allow });
  return r;
}

async function call(label, { method = 'POST', path = '/v1/chat/completions', headers = {}, body, allow } = {}) {
  return keep(label, await request(gw.port, { method, path, headers, body }), allow);
}

async function callStream(label, { path = '/v1/chat/completions', headers = {}, body }) {
  const r = await stream(gw.port, { path, headers, body });
  keep(label, r);
  return r;
}

async function admin(label, token, method, path, body, allow) {
  return keep(label, await adminRequest(gw.port, token, method, path, body), allow);
}

const rid = (id, extra = {}) => ({ 'x-request-id': id, ...extra });
const bearer = (key, id) => authHeaders(key, rid(id));

// ---------------------------------------------------------------------------------------------
// Searching

const b64 = (s) => Buffer.from(s).toString('base64');
const b64url = (s) => Buffer.from(s).toString('base64url');

/** The strings whose presence anywhere means `secret` leaked. */
function needles(secret) {
  const out = new Set([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)]);
  // Whole-secret encodings, minus the last block (its padding depends on what follows).
  for (const enc of [b64(secret), b64url(secret)]) out.add(enc.slice(0, Math.max(WINDOW, enc.length - 4)));
  const core = secret.replace(WELL_KNOWN, '');
  for (let i = 0; i + WINDOW <= core.length; i++) out.add(core.slice(i, i + WINDOW));
  return [...out].filter((n) => n.length >= WINDOW || n === secret);
}

/** A PEM private key: every 12-character piece of its base64 lines but the first (a common header). */
function pemNeedles(pem) {
  const lines = pem.split('\n').filter((l) => l && !l.startsWith('-----'));
  const out = new Set([pem, JSON.stringify(pem).slice(1, -1)]);
  for (const line of lines.slice(1)) {
    for (let i = 0; i + WINDOW <= line.length; i += 3) out.add(line.slice(i, i + WINDOW));
  }
  return [...out];
}

/**
 * A JWT: whole, or any piece of its signature (its header is every HS256 token's, and its
 * claims are no secret).
 */
function jwtNeedles(token) {
  const signature = token.split('.')[2];
  return [token, ...needles(signature).filter((n) => n !== signature || n.length >= WINDOW)];
}
const JWT_NAMES = new Set(['adminJwt', 'serviceJwt']);

/** [{name, needles}] of every secret planted or issued. */
function allSecrets() {
  const list = Object.entries({ ...S, ...dynamic }).filter(([, v]) => typeof v === 'string' && v)
    .map(([name, value]) => ({ name, needles: JWT_NAMES.has(name) ? jwtNeedles(value) : needles(value) }));
  list.push({ name: 'vertexPrivateKey', needles: pemNeedles(serviceAccount.private_key) });
  list.push({ name: 'vertexAdminPrivateKey', needles: pemNeedles(adminServiceAccount.private_key) });
  for (const [i, t] of [...vertex.tokens.keys()].entries()) list.push({ name: `vertexAccessToken${i}`, needles: needles(t) });
  return list;
}

/** Every (secret, needle) found in `text`, except the secrets in `allow`. */
function leaks(text, secrets, allow = []) {
  const found = [];
  for (const s of secrets) {
    if (allow.includes(s.name)) continue;
    const hit = s.needles.find((n) => text.includes(n));
    if (hit !== undefined) {
      const at = text.indexOf(hit);
      found.push(`${s.name} (as ${JSON.stringify(hit)}) in …${text.slice(Math.max(0, at - 80), at + hit.length + 80)}…`);
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------

test('no planted secret reaches a log line, a metric, an audit record, a usage row or an answer', T, async (t) => {
  const main = dynamic.mainKey;
  const ok = (r, status, what) => assert.equal(r.status, status, `${what}: ${r.text ?? r.raw}`);
  const inference = new Set(); // x-request-id of every inference request sent

  const chatReq = async (label, key, model, text, extra = {}, headers = {}) => {
    inference.add(label);
    return call(label, { headers: key === undefined ? rid(label, headers) : bearer(key, label),
      body: chatBody(model, text, extra) });
  };
  const chatStream = async (label, key, model, text, extra = {}) => {
    inference.add(label);
    return callStream(label, { headers: bearer(key, label),
      body: chatBody(model, text, { stream: true, stream_options: { include_usage: true }, ...extra }) });
  };

  // The admin signs in; its token is a secret from now on.
  const login = keep('admin login', await adminLoginRaw(gw.port, 'root@secrets.test', S.adminPassword));
  ok(login, 200, 'admin login');
  dynamic.adminJwt = login.json.token;
  answers.at(-1).allow = ['adminJwt'];
  const jwt = dynamic.adminJwt;

  // Keys through the admin API: their plaintext is shown once, in the answer that creates it.
  const mkKey = async (name, fields) => {
    const r = await admin(`create key ${name}`, jwt, 'POST', '/admin/keys', { name, ...fields });
    ok(r, 201, `create key ${name}`);
    dynamic[`key_${name}`] = r.json.key;
    answers.at(-1).allow = [`key_${name}`];
    return r.json;
  };
  await mkKey('limited', { allowed_models: ['gpt'] });
  await mkKey('slow', { rpm_limit: 1 });
  await mkKey('poor', { budget_usd: '0.000001' });
  const doomed = await mkKey('doomed', {});
  const regen = await admin('regenerate key doomed', jwt, 'POST', `/admin/keys/${doomed.id}/regenerate`);
  ok(regen, 200, 'regenerate');
  dynamic.key_doomed_new = regen.json.key;
  answers.at(-1).allow = ['key_doomed_new'];

  // Providers through the admin API, with secrets: the answers only say which are set.
  let r = await admin('create provider oai-admin', jwt, 'POST', '/admin/providers',
    { name: 'oai-admin', type: 'openai', base_url: openai.baseUrl, api_key: S.openaiKey });
  ok(r, 201, 'create provider oai-admin');
  const oaiAdmin = r.json;
  r = await admin('create provider vtx-admin', jwt, 'POST', '/admin/providers',
    { name: 'vtx-admin', type: 'vertex', base_url: vertex.baseUrl, project: DEFAULT_PROJECT, location: 'us-central1',
      credentials_json: JSON.stringify(adminServiceAccount) });
  ok(r, 201, 'create provider vtx-admin');
  assert.deepEqual(r.json.secrets_set, ['credentials_json']);
  r = await admin('create provider bed-admin', jwt, 'POST', '/admin/providers',
    { name: 'bed-admin', type: 'bedrock', base_url: bedrock.url, region: 'us-east-1', aws_access_key_id: bedrockKeyId,
      aws_secret_access_key: S.bedrockSecret, aws_session_token: S.bedrockSessionToken });
  ok(r, 201, 'create provider bed-admin');
  for (const [name, provider, upstream] of [['oai-admin-gpt', 'oai-admin', 'gpt-4o-mini'],
    ['vtx-admin-gemini', 'vtx-admin', 'gemini-2.5-flash'],
    ['bed-admin-claude', 'bed-admin', 'us.anthropic.claude-sonnet-4-20250514-v1:0']]) {
    ok(await admin(`create model ${name}`, jwt, 'POST', '/admin/models', { name, provider, upstream_model: upstream }),
      201, `create model ${name}`);
  }
  // A service token: its secret is shown once, and it signs in.
  r = await admin('create service token', jwt, 'POST', '/admin/tokens', { service_name: 'ci', role: 'viewer' });
  ok(r, 201, 'create service token');
  dynamic.serviceToken = r.json.token;
  answers.at(-1).allow = ['serviceToken'];
  r = keep('service token sign-in', await request(gw.port, { method: 'POST', path: '/admin/auth/token',
    body: { service_name: 'ci', token: dynamic.serviceToken } }));
  ok(r, 200, 'service token sign-in');
  dynamic.serviceJwt = r.json.token;
  answers.at(-1).allow = ['serviceJwt'];

  // Answers from every provider type, whole and streamed.
  for (const model of ['gpt', 'claude', 'gem', 'bed', 'vtx-gemini', 'vtx-claude', 'oai-admin-gpt',
    'vtx-admin-gemini', 'bed-admin-claude']) {
    ok(await chatReq(`ok-${model}`, main, model, 'Say hello', { max_tokens: 64 }), 200, model);
    ok(await chatStream(`stream-${model}`, main, model, 'Count to three', { max_tokens: 64 }), 200, `${model} stream`);
  }
  inference.add('embed');
  ok(await call('embed', { path: '/v1/embeddings', headers: bearer(main, 'embed'),
    body: { model: 'embed', input: ['alpha', 'beta'] } }), 200, 'embeddings');
  const messages = { model: 'claude', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] };
  inference.add('messages');
  ok(await call('messages', { path: '/v1/messages', headers: { 'x-api-key': main, ...rid('messages') }, body: messages }),
    200, '/v1/messages');
  inference.add('messages-stream');
  ok(await callStream('messages-stream', { path: '/v1/messages', headers: { 'x-api-key': main, ...rid('messages-stream') },
    body: { ...messages, stream: true } }), 200, '/v1/messages stream');

  // Refused keys: none, unknown, near misses of real ones, other secrets presented as keys.
  const near = (k) => k.slice(0, -1) + (k.at(-1) === 'A' ? 'B' : 'A');
  const refusals = {
    'no-key': undefined,
    'unknown-key': `sk-llmgw-${alnum(43)}`,
    'near-miss': near(main),
    'near-miss-long': `${main}x`,
    'near-miss-short': main.slice(0, -1),
    'regenerated-away': dynamic.key_doomed,
    'admin-jwt-as-key': jwt,
    'provider-key-as-key': S.openaiKey,
    'metrics-token-as-key': S.metricsToken,
  };
  for (const [label, key] of Object.entries(refusals)) {
    const res = await chatReq(label, key, 'gpt', 'Hi');
    ok(res, 401, label);
  }
  for (const [label, headers] of [['x-api-key-near-miss', { 'x-api-key': near(main) }],
    ['api-key-near-miss', { 'api-key': near(main) }], ['basic-auth', { authorization: `Basic ${b64(`u:${main}x`)}` }]]) {
    inference.add(label);
    ok(await call(label, { headers: rid(label, headers), body: chatBody('gpt', 'Hi') }), 401, label);
  }
  inference.add('messages-near-miss');
  ok(await call('messages-near-miss', { path: '/v1/messages', headers: { 'x-api-key': near(main), ...rid('messages-near-miss') },
    body: messages }), 401, '/v1/messages near miss');
  ok(await chatReq('ok-regenerated', dynamic.key_doomed_new, 'gpt', 'Hi'), 200, 'regenerated key');

  // Permission, routing, rate limit, budget.
  ok(await chatReq('forbidden-model', dynamic.key_limited, 'claude', 'Hi'), 403, 'model not allowed');
  ok(await chatReq('unknown-model', main, 'no-such-model', 'Hi'), 404, 'unknown model');
  ok(await chatReq('rate-1', dynamic.key_slow, 'gpt', 'Hi'), 200, 'first within the limit');
  ok(await chatReq('rate-2', dynamic.key_slow, 'gpt', 'Hi'), 429, 'rate limited');
  const budget = await chatReq('budget', dynamic.key_poor, 'held', 'Hi', { max_tokens: 1000 });
  ok(budget, 429, 'budget refusal');
  assert.equal(budget.json?.error?.code, 'insufficient_quota', budget.text);

  // Upstream failures: refused credentials, rate limits, server errors, a cut stream.
  const upstream = [
    ['up-wrong-key', 'gpt-wrong', 'Hi'],
    ['up-401', 'gpt', 'Hi [mock:status=401]'],
    ['up-429', 'gpt', 'Hi [mock:status=429] [mock:retry_after=3]'],
    ['up-500', 'gpt', 'Hi [mock:status=500]'],
    ['up-claude-401', 'claude', 'Hi [mock:status=401]'],
    ['up-claude-429', 'claude', 'Hi [mock:status=429] [mock:retry_after=2]'],
    ['up-claude-529', 'claude', 'Hi [mock:status=529]'],
    ['up-gem-429', 'gem', 'Hi [mock:status=429] [mock:retry_after=2]'],
    ['up-gem-500', 'gem', 'Hi [mock:status=500]'],
    ['up-bed-throttle', 'bed', 'Hi [mock:error=ThrottlingException]'],
    ['up-bed-500', 'bed', 'Hi [mock:error=InternalServerException]'],
    ['up-bed-denied', 'bed', 'Hi [mock:error=AccessDeniedException]'],
    ['up-vtx-401', 'vtx-gemini', 'Hi [vertex:status=401]'],
    ['up-vtx-429', 'vtx-claude', 'Hi [vertex:status=429] [vertex:retry_after=2]'],
    ['up-vtx-500', 'vtx-gemini', 'Hi [vertex:status=500]'],
  ];
  for (const [label, model, text] of upstream) {
    const res = await chatReq(label, main, model, text, { max_tokens: 64 });
    assert.ok(res.status >= 400, `${label}: ${res.status} ${res.text}`);
  }
  const cut = await chatStream('up-claude-cut', main, 'claude', 'Hi [mock:error_after=2]', { max_tokens: 64 });
  assert.equal(cut.status, 200);
  ok(await chatReq('up-timeout', main, 'gpt-slow', 'Hi [mock:delay_ms=1500]'), 504, 'first-byte timeout');
  ok(await chatReq('up-refused', main, 'gpt-dead', 'Hi'), 502, 'connection refused');
  const cutStream = await chatStream('up-stream-cut', main, 'gpt', 'Hi [mock:drop_after_chunks=3]');
  assert.equal(cutStream.status, 200);
  // The client goes away mid-stream.
  inference.add('client-gone');
  keep('client-gone', await stream(gw.port, { headers: bearer(main, 'client-gone'),
    body: chatBody('gpt', 'Hi [mock:chunks=50] [mock:chunk_delay_ms=20]', { stream: true }),
    onData: (_d, all, req) => { if (all.length > 200) req.destroy(); } }));

  // Too large: a body (413) and a head that holds a key (431), raw. The HTTP layer refuses
  // both before a route sees them: no audit record.
  ok(await call('too-large', { headers: bearer(main, 'too-large'),
    body: chatBody('gpt', 'x'.repeat(MAX_BODY_BYTES)) }), 413, 'body too large');
  const big = await rawExchange(gw.port, rawRequest({ headers: { authorization: `Bearer ${main}`,
    'x-pad': `${main} `.repeat(600) }, body: chatBody('gpt', 'Hi') }), { timeoutMs: 5_000 });
  answers.push({ label: 'head too large', text: big.data.toString('latin1'), allow: [] });
  assert.match(big.data.toString('latin1'), /^HTTP\/1\.1 431/);

  // Bodies that are not what they should be.
  for (const [label, body] of [['bad-json', '{"model": '], ['not-object', '[1,2]'], ['wrong-type', '{"model": 5, "messages": []}'],
    ['no-messages', '{"model": "gpt"}'], ['binary', Buffer.from([0xff, 0xfe, 0x00, 0x7b])]]) {
    inference.add(label);
    const res = await call(label, { headers: bearer(main, label), body });
    assert.ok(res.status >= 400 && res.status < 500, `${label}: ${res.status} ${res.text}`);
  }
  inference.add('messages-bad-json');
  ok(await call('messages-bad-json', { path: '/v1/messages', headers: { 'x-api-key': main, ...rid('messages-bad-json') },
    body: '{"model": "claude", ' }), 400, '/v1/messages bad JSON');

  // A provider's key replaced through the admin API by one the upstream refuses.
  r = await admin('patch provider oai-admin', jwt, 'PATCH', `/admin/providers/${oaiAdmin.id}`, { api_key: S.openaiWrongKey });
  ok(r, 200, 'patch provider');
  const refused = await chatReq('up-admin-wrong-key', main, 'oai-admin-gpt', 'Hi');
  assert.ok(refused.status >= 400, refused.text);

  // The admin API with good and bad credentials.
  const tampered = `${jwt.slice(0, -4)}${jwt.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
  const forged = signJwt({ alg: 'HS256', typ: 'JWT' }, jwtClaims(login.json.subject.id), { secret: `${S.jwtSecret}x` });
  for (const [label, token] of [['admin good', jwt], ['admin service jwt', dynamic.serviceJwt], ['admin none', undefined],
    ['admin tampered', tampered], ['admin forged', forged], ['admin gateway key', main], ['admin metrics token', S.metricsToken],
    ['admin provider key', S.openaiKey], ['admin service token as jwt', dynamic.serviceToken]]) {
    for (const path of ['/admin/keys', '/admin/providers', '/admin/auth/me']) {
      await admin(`${label} ${path}`, token, 'GET', path);
    }
  }
  ok(await admin('admin providers', jwt, 'GET', '/admin/providers'), 200, 'list providers');
  ok(await admin('admin provider', jwt, 'GET', `/admin/providers/${oaiAdmin.id}`), 200, 'get provider');
  ok(await admin('admin audit', jwt, 'GET', '/admin/audit?limit=500'), 200, 'admin audit trail');
  ok(await admin('admin users', jwt, 'GET', '/admin/users'), 200, 'users');
  ok(await admin('admin tokens', jwt, 'GET', '/admin/tokens'), 200, 'tokens');
  ok(await admin('admin usage', jwt, 'GET', '/admin/usage?group_by=key'), 200, 'usage');
  await admin('admin bad body', jwt, 'POST', '/admin/providers', `{"name": "x", "api_key": "${S.anthropicKey}`);
  await admin('admin unknown field', jwt, 'POST', '/admin/providers',
    { name: 'x', type: 'openai', base_url: openai.baseUrl, api_key: S.anthropicKey, apikey: S.anthropicKey });
  await admin('admin bad provider', jwt, 'POST', '/admin/providers',
    { name: 'y', type: 'bedrock', aws_secret_access_key: S.bedrockSecret });
  // Unusable service-account keys (JSON cut short; a private key cut in half): whatever the
  // gateway says about them, at the admin API or when a call needs them, quotes none of it.
  const halfKey = adminServiceAccount.private_key.slice(0, Math.floor(adminServiceAccount.private_key.length / 2));
  for (const [name, credentials] of [
    ['vtx-cut-json', `{"type": "service_account", "private_key": ${JSON.stringify(adminServiceAccount.private_key)}`],
    ['vtx-cut-key', JSON.stringify({ ...adminServiceAccount, private_key: halfKey })],
    ['vtx-not-pem', JSON.stringify({ ...adminServiceAccount, private_key: halfKey.replace(/-----[A-Z ]+-----/g, '') })]]) {
    r = await admin(`create provider ${name}`, jwt, 'POST', '/admin/providers', { name, type: 'vertex', base_url: vertex.baseUrl,
      project: DEFAULT_PROJECT, location: 'us-central1', credentials_json: credentials });
    if (r.status === 201) {
      await admin(`create model ${name}-m`, jwt, 'POST', '/admin/models', { name: `${name}-m`, provider: name,
        upstream_model: 'gemini-2.5-flash' });
      const res = await chatReq(`call-${name}`, main, `${name}-m`, 'Hi');
      assert.ok(res.status >= 400, `${name}: ${res.status} ${res.text}`);
    }
  }
  for (const [label, password] of [['login wrong password', `${S.adminPassword}x`], ['login near miss', S.adminPassword.slice(0, -1)],
    ['login unknown user', S.adminPassword]]) {
    keep(label, await adminLoginRaw(gw.port, label === 'login unknown user' ? 'nobody@secrets.test' : 'root@secrets.test', password));
  }
  keep('service sign-in wrong', await request(gw.port, { method: 'POST', path: '/admin/auth/token',
    body: { service_name: 'ci', token: `${dynamic.serviceToken}x` } }));

  // Metrics: refused without, with a wrong and with a near-miss token; then the scrape.
  for (const [label, headers] of [['metrics none', {}], ['metrics wrong', authHeaders(S.openaiKey)],
    ['metrics near miss', authHeaders(S.metricsToken.slice(0, -1))]]) {
    const res = keep(label, await request(gw.port, { path: '/metrics', headers }));
    ok(res, 401, label);
  }
  for (const p of ['/readyz', '/healthz', '/v1/models']) await call(`GET ${p}`, { method: 'GET', path: p, headers: authHeaders(main) });
  const scrape = await request(gw.port, { path: '/metrics', headers: authHeaders(S.metricsToken) });
  ok(scrape, 200, 'scrape');

  // SIGTERM archives what is spooled; every inference request has its record in S3.
  await gw.stop();
  assert.equal(gw.exit.code, 0, gw.stderr.slice(-2000));
  const records = [];
  const objects = [];
  await waitUntil(async () => {
    records.length = 0;
    objects.length = 0;
    for (const name of await s3.list('logs/')) {
      const text = zlib.gunzipSync(await s3.get(name)).toString('utf8');
      objects.push(text);
      for (const line of text.split('\n').filter(Boolean)) records.push(JSON.parse(line));
    }
    const ids = new Set(records.map((x) => x.client_request_id));
    return [...inference].every((id) => ids.has(id));
  }, 10_000, 'an archived record for every inference request').catch(() => {});
  const missing = [...inference].filter((id) => !records.some((x) => x.client_request_id === id));
  assert.deepEqual(missing, [], 'an audit record for every inference request');
  assert.deepEqual(s3.stats.refused, [], 'the archive signed with the session token');
  // A provider's in-stream error: its type in the record and the access line is the
  // translator's, read after the translator is gone (a freed string once).
  const cutRecord = records.find((x) => x.client_request_id === 'up-claude-cut');
  const cutLine = gw.accessLog().find((l) => l.client_request_id === 'up-claude-cut');
  assert.match(String(cutRecord?.error_type), /^[a-z_]+_error$/, JSON.stringify(cutRecord));
  assert.equal(cutLine?.error_type, cutRecord.error_type);
  const usage = await gw.usageRows();

  // The search.
  const secrets = allSecrets();
  assert.ok(secrets.length >= 20, `${secrets.length} secrets`);
  const problems = [];
  const check = (where, text, allow) => {
    for (const l of leaks(text, secrets, allow)) problems.push(`${where}: ${l}`);
  };
  check('stderr', gw.allStderr);
  check('stdout', gw.stdout);
  check('/metrics', scrape.text);
  for (const [i, o] of objects.entries()) check(`audit object ${i}`, o);
  check('usage rows', JSON.stringify(usage));
  for (const a of answers) check(`answer "${a.label}"`, a.text, a.allow);
  assert.deepEqual(problems, [], `secrets leaked:\n${problems.join('\n')}`);

  // The search.would have found them: the allowed answers do hold their secret.
  const issued = answers.filter((a) => a.allow.length > 0);
  for (const a of issued) {
    assert.ok(leaks(a.text, secrets.filter((s) => a.allow.includes(s.name))).length > 0, `${a.label} holds its secret`);
  }
  // …and so does the gateway's environment, for every secret planted there.
  const inEnv = leaks(JSON.stringify(gw.env), secrets).map((l) => l.split(' ')[0]);
  for (const name of ['openaiKey', 'openaiWrongKey', 'anthropicKey', 'geminiKey', 'bedrockSecret', 'bedrockSessionToken',
    's3Secret', 's3SessionToken', 'masterKey', 'jwtSecret', 'metricsToken']) {
    assert.ok(inEnv.includes(name), `the search finds ${name} where it is`);
  }
  // What was searched is what the gateway said: an access line for every inference request.
  const logged = new Set(gw.accessLog().map((l) => l.client_request_id));
  assert.deepEqual([...inference].filter((id) => !logged.has(id)), [], 'access lines');
  t.diagnostic(`${secrets.length} secrets, ${secrets.reduce((n, x) => n + x.needles.length, 0)} needles; ` +
    `stderr ${gw.allStderr.length} B, ${objects.length} audit objects (${records.length} records), ` +
    `${answers.length} answers`);
});

/** The text of every archive object in a local sink directory (gunzipped). */
async function localArchive(dir) {
  const out = [];
  const walk = async (d) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.jsonl.gz')) out.push(zlib.gunzipSync(await fsp.readFile(p)).toString('utf8'));
    }
  };
  await walk(dir);
  return out;
}

test('the Redis password, right, wrong or with Redis gone, reaches no log line, metric, record or answer', T, async (t) => {
  const password = `rp-${alnum(32)}`;
  const wrong = `${password.slice(0, -1)}${password.endsWith('A') ? 'B' : 'A'}`;
  const secrets = [{ name: 'redisPassword', needles: needles(password) }, { name: 'redisWrongPassword', needles: needles(wrong) }];
  const redis = await new RedisServer({ password }).start();
  const first = answers.length;
  let g;
  try {
    g = await startGateway({ config: {
      providers: [{ name: 'oai', type: 'openai', base_url: openai.baseUrl, api_key: S.openaiKey }],
      models: [{ name: 'held', provider: 'oai', upstream_model: 'gpt-4o-mini', pricing_model: 'held-prices' }],
      prices: [{ model: 'held-prices', components: { raw: '[{direction: "input", unit: "1m_tokens", price: "1"}]' } }],
    }, keys: { limited: { rpm: 1000, budget: '10' } }, serve: false, env: {
      REDIS_ADDRESS: `127.0.0.1:${redis.port}`, REDIS_PASSWORD: password, LOG_LEVEL: 'debug',
      LOGGING_SINK_FLUSH_INTERVAL: '1s', LLMGW_USAGE_FLUSH_MS: '50' } });
    const key = g.keys.limited.key;
    const send = async (label, streamed = false) => {
      const body = chatBody('held', 'Hi', { max_tokens: 16, ...(streamed ? { stream: true } : {}) });
      const r = streamed ? await stream(g.port, { headers: authHeaders(key, rid(label)), body })
        : await request(g.port, { method: 'POST', path: '/v1/chat/completions', headers: authHeaders(key, rid(label)), body });
      keep(`redis ${label}`, r);
      return r;
    };
    const scrapes = [];
    // Right password; a wrong one (refused by Redis); the right one with Redis gone.
    for (const [phase, env, down] of [['right', { REDIS_PASSWORD: password }, false],
      ['wrong', { REDIS_PASSWORD: wrong }, false], ['gone', { REDIS_PASSWORD: password }, true]]) {
      Object.assign(g.env, env);
      await g.serve({ threads: 1 });
      if (down) await redis.stop();
      for (let i = 0; i < 3; i++) {
        const r = await send(`${phase}-${i}`, i === 2);
        if (phase === 'right') assert.equal(r.status, 200, r.text ?? r.raw);
        else assert.ok([200, 503].includes(r.status), `${phase}: ${r.status} ${r.text ?? r.raw}`);
      }
      scrapes.push((await request(g.port, { path: '/metrics' })).text);
      await g.stop();
    }
    assert.match(g.allStderr, /redis refused the connection's AUTH or SELECT|shared state unavailable/,
      'the refusals were logged');
    const problems = [];
    const check = (where, text) => {
      for (const l of leaks(text, secrets)) problems.push(`${where}: ${l}`);
    };
    check('stderr', g.allStderr);
    check('stdout', g.stdout);
    for (const [i, m] of scrapes.entries()) check(`/metrics ${i}`, m);
    const archived = await localArchive(path.join(g.dataDir, 'audit'));
    assert.ok(archived.length > 0, 'audit objects');
    for (const [i, o] of archived.entries()) check(`audit object ${i}`, o);
    check('usage rows', JSON.stringify(await g.usageRows()));
    for (const a of answers.slice(first)) check(`answer "${a.label}"`, a.text);
    assert.deepEqual(problems, [], `secrets leaked:\n${problems.join('\n')}`);
    assert.ok(leaks(JSON.stringify(g.env), secrets).some((l) => l.startsWith('redisPassword ')),
      'the search finds the password where it is');
    t.diagnostic(`stderr ${g.allStderr.length} B, ${archived.length} audit objects, ${answers.length - first} answers`);
  } finally {
    await g?.cleanup();
    await redis.cleanup();
  }
});
