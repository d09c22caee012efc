// Self-test of the mock Vertex AI upstream, driven by the official clients: @google/genai in
// Vertex mode (its google-auth-library signs a JWT with the test service account's key and
// fetches a token from the mock) for Gemini, and @anthropic-ai/vertex-sdk for Claude. If they
// decode the mock's answers, streams and errors, tests built on the mock exercise what real
// clients see. No gateway needed.
//
// google-auth-library posts service-account assertions to Google's token endpoint whatever the
// key file's token_uri says (and signs that URL as `aud`); the clients here get a fetch that
// sends that one URL to the mock's /token and refuses every other non-mock URL, so nothing
// leaves the machine. The gateway itself must use token_uri: tests of it keep the mock's default
// audience check (aud = the mock's token URI).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GoogleGenAI, ApiError } from '@google/genai';
import { AnthropicVertex } from '@anthropic-ai/vertex-sdk';
import { GoogleAuth } from 'google-auth-library';

import {
  VertexMock, DEFAULT_PROJECT, DEFAULT_ACCESS_TOKEN, GOOGLE_TOKEN_URI, CLOUD_PLATFORM_SCOPE, JWT_BEARER_GRANT,
  ANTHROPIC_VERTEX_VERSION, UNAUTHENTICATED_MESSAGE, makeServiceAccount, signJwt, assertionClaims, parseVertexDirectives,
} from './vertex_mock.mjs';
import { AnthropicMock } from './anthropic_mock.mjs';
import { DEFAULT_REPLY } from './openai_mock.mjs';
import { request, spawnMockProgram, stream } from '../integration/harness.mjs';

const T = { timeout: 30_000 };
const GEMINI = 'gemini-2.5-flash';
const PLAIN = 'gemini-2.0-flash';
const CLAUDE = 'claude-sonnet-4@20250514';
const LOCATION = 'us-central1';
let mock;
let sa; // {path, json}

before(async () => {
  mock = new VertexMock({ audiences: [GOOGLE_TOKEN_URI] });
  await mock.start();
  sa = mock.writeServiceAccountFile();
});

after(async () => {
  await mock?.stop();
});

/** google-auth-library's fetch: Google's token URL goes to `m`'s /token; nothing else leaves. */
function tokenRedirect(m) {
  return (input, init) => {
    const u = String(input instanceof Request ? input.url : input);
    if (u === GOOGLE_TOKEN_URI) return fetch(m.tokenUri, init);
    if (u.startsWith(m.url)) return fetch(u, init);
    return Promise.reject(new Error(`test fetch: refusing ${u}`));
  };
}

const authOptions = (m, keyFile) => ({ keyFile, clientOptions: { transporterOptions: { fetchImplementation: tokenRedirect(m) } } });

function genai(m = mock, keyFile = sa.path, extra = {}) {
  return new GoogleGenAI({ vertexai: true, project: DEFAULT_PROJECT, location: LOCATION, googleAuthOptions: authOptions(m, keyFile),
    httpOptions: { baseUrl: m.baseUrl }, ...extra });
}

function claudeClient(m = mock, keyFile = sa.path, extra = {}) {
  const googleAuth = new GoogleAuth({ ...authOptions(m, keyFile), scopes: [CLOUD_PLATFORM_SCOPE] });
  return new AnthropicVertex({ region: 'us-east5', projectId: DEFAULT_PROJECT, baseURL: `${m.url}/v1`, googleAuth, maxRetries: 0,
    defaultHeaders: { 'anthropic-version': ANTHROPIC_VERTEX_VERSION }, ...extra });
}

const modelPath = (model, action, { project = DEFAULT_PROJECT, publisher = 'google', version = 'v1' } = {}) =>
  `/${version}/projects/${project}/locations/${LOCATION}/publishers/${publisher}/models/${model}:${action}`;
const bearer = (token = DEFAULT_ACCESS_TOKEN) => ({ authorization: `Bearer ${token}` });
const rawPost = (p, body, headers = bearer(), m = mock) => request(m.port, { method: 'POST', path: p, headers, body });
const userBody = (text, extra = {}) => ({ contents: [{ role: 'user', parts: [{ text }] }], ...extra });
const claudeBody = (text, extra = {}) => ({ anthropic_version: ANTHROPIC_VERTEX_VERSION, max_tokens: 100, messages: [{ role: 'user', content: text }], ...extra });
const tokenPost = (form, m = mock, headers = { 'content-type': 'application/x-www-form-urlencoded' }) =>
  request(m.port, { method: 'POST', path: '/token', headers, body: typeof form === 'string' ? form : new URLSearchParams(form).toString() });

/** The ApiError a @google/genai call rejects with: {status, body}. */
async function genaiError(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof ApiError, `an ApiError, got ${e?.constructor?.name}: ${e?.message}`);
    return { status: e.status, body: JSON.parse(e.message.replace(/^got status: [^.]*\. /, '')) };
  }
  assert.fail('the call did not fail');
}

/** Strict Gemini-style SSE: every event is exactly `data: JSON\r\n\r\n`. */
function strictFrames(raw) {
  assert.match(raw, /^(data: \{[^\r\n]*\}\r\n\r\n)+$/, 'every event is `data: {json}` followed by CRLF CRLF');
  return raw.slice(0, -4).split('\r\n\r\n').map((e) => JSON.parse(e.slice('data: '.length)));
}

test('generateContent through @google/genai: OAuth from the key file, one token for many calls, Vertex\'s response', T, async () => {
  mock.clearRequests();
  mock.clearTokenRequests();
  const ai = genai();
  const r = await ai.models.generateContent({ model: PLAIN, contents: 'hello', config: { systemInstruction: 'Be brief.' } });
  assert.equal(r.text, DEFAULT_REPLY);
  assert.equal(r.modelVersion, PLAIN);
  assert.equal(r.usageMetadata.promptTokenCount, 5);
  assert.equal(r.usageMetadata.candidatesTokenCount, 9);
  assert.equal(r.usageMetadata.totalTokenCount, 14);
  assert.equal(r.usageMetadata.trafficType, 'ON_DEMAND');
  assert.match(r.createTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  for (let i = 0; i < 3; i++) await ai.models.generateContent({ model: GEMINI, contents: `again ${i}` });

  const tokens = mock.tokenRecords();
  assert.equal(tokens.length, 1, 'the client fetched one token and reused it');
  assert.equal(mock.issuedTokenCount, 1);
  const [tok] = tokens;
  assert.equal(tok.status, 200);
  assert.equal(tok.grant_type, JWT_BEARER_GRANT);
  assert.equal(tok.jwt_header.alg, 'RS256');
  assert.equal(tok.claims.iss, sa.json.client_email);
  assert.equal(tok.claims.aud, GOOGLE_TOKEN_URI, 'google-auth-library signs Google\'s token URL whatever token_uri says');
  assert.ok(tok.claims.scope.split(' ').includes(CLOUD_PLATFORM_SCOPE));
  assert.equal(tok.claims.exp - tok.claims.iat, 3600);
  assert.equal(tok.expires_in, 3599);

  const recs = mock.recorded();
  assert.equal(recs.length, 4);
  const [rec] = recs;
  assert.equal(rec.path, `/v1beta1/projects/${DEFAULT_PROJECT}/locations/${LOCATION}/publishers/google/models/${PLAIN}:generateContent`, '@google/genai defaults to v1beta1 on Vertex');
  assert.deepEqual([rec.api_version, rec.project, rec.location, rec.publisher, rec.model, rec.action],
    ['v1beta1', DEFAULT_PROJECT, LOCATION, 'google', PLAIN, 'generateContent']);
  assert.ok(recs.every((x) => x.auth === 'issued' && x.token_seq === 1 && x.status === 200));
  assert.equal(rec.headers.authorization, 'Bearer [redacted]');
  assert.deepEqual(rec.body.systemInstruction.parts, [{ text: 'Be brief.' }]);

  // v1 (what the gateway calls) answers the same; Google's pretty-printed JSON, Vertex's members.
  const v1 = await genai(mock, sa.path, { apiVersion: 'v1' }).models.generateContent({ model: PLAIN, contents: 'hello' });
  assert.equal(v1.text, DEFAULT_REPLY);
  assert.equal(mock.recorded().at(-1).api_version, 'v1');
  const raw = await rawPost(modelPath(PLAIN, 'generateContent'), userBody('hello'));
  assert.equal(raw.status, 200);
  assert.equal(raw.headers['content-type'], 'application/json; charset=UTF-8');
  assert.ok(raw.text.startsWith('{\n  "candidates": [\n'));
  assert.deepEqual(Object.keys(raw.json), ['candidates', 'usageMetadata', 'modelVersion', 'createTime', 'responseId']);
  assert.deepEqual(Object.keys(raw.json.usageMetadata).slice(0, 4), ['promptTokenCount', 'candidatesTokenCount', 'totalTokenCount', 'trafficType']);
  assert.equal(mock.recorded().at(-1).auth, 'static', 'the static access token is accepted');
});

test('streamGenerateContent?alt=sse: CRLF frames, usage as running totals, the last chunk equals the whole answer', T, async () => {
  const ai = genai();
  const whole = await ai.models.generateContent({ model: PLAIN, contents: 'same answer' });
  const chunks = [];
  for await (const ch of await ai.models.generateContentStream({ model: PLAIN, contents: 'same answer' })) chunks.push(ch);
  assert.equal(chunks.map((c) => c.text).join(''), DEFAULT_REPLY);
  assert.deepEqual(chunks.map((c) => c.usageMetadata.candidatesTokenCount), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(chunks.at(-1).usageMetadata, whole.usageMetadata);
  assert.equal(chunks.at(-1).candidates[0].finishReason, 'STOP');
  assert.ok(chunks.slice(0, -1).every((c) => c.candidates[0].finishReason === undefined));
  assert.deepEqual(mock.recorded().at(-1).query, { alt: 'sse' });

  const r = await stream(mock.port, { path: `${modelPath(GEMINI, 'streamGenerateContent')}?alt=sse`, headers: bearer(), body: userBody('s [mock:chunks=3]') });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/event-stream');
  assert.ok(r.complete);
  const frames = strictFrames(r.raw);
  assert.deepEqual(frames.map((f) => f.candidates[0].content.parts[0].text), ['tok0', ' tok1', ' tok2']);
  assert.ok(frames.every((f) => f.usageMetadata.trafficType === 'ON_DEMAND' && typeof f.createTime === 'string'));
  assert.deepEqual(frames.map((f) => f.usageMetadata.candidatesTokenCount), [1, 2, 3]);
  assert.ok(frames.every((f) => f.usageMetadata.thoughtsTokenCount === 10), 'thinking counted from the first chunk');

  const noSse = await rawPost(modelPath(GEMINI, 'streamGenerateContent'), userBody('x'));
  assert.equal(noSse.status, 400);
  // An error event inside the stream, as on the Gemini API; the SDK throws it as an ApiError.
  const got = [];
  const err = await genaiError((async () => {
    for await (const ch of await ai.models.generateContentStream({ model: PLAIN, contents: 'x [mock:error_after=2]' })) got.push(ch.text);
  })());
  assert.deepEqual(got, ['Hello', '!']);
  assert.equal(err.status, 503);
});

test('embeddings through @google/genai (:predict), and :predict\'s limits', T, async () => {
  mock.clearRequests();
  const ai = genai();
  const r = await ai.models.embedContent({ model: 'text-embedding-005', contents: ['first text', 'second'],
    config: { outputDimensionality: 8, taskType: 'RETRIEVAL_DOCUMENT', title: 'Doc' } });
  assert.equal(r.embeddings.length, 2);
  assert.ok(r.embeddings.every((e) => e.values.length === 8));
  assert.deepEqual(r.embeddings.map((e) => e.statistics), [{ truncated: false, tokenCount: 3 }, { truncated: false, tokenCount: 2 }]);
  assert.deepEqual(r.metadata, { billableCharacterCount: 15 });
  const [rec] = mock.recorded();
  assert.equal(rec.action, 'predict');
  assert.deepEqual(rec.body, { instances: [{ content: 'first text', task_type: 'RETRIEVAL_DOCUMENT', title: 'Doc' },
    { content: 'second', task_type: 'RETRIEVAL_DOCUMENT', title: 'Doc' }], parameters: { outputDimensionality: 8 } });
  const one = await ai.models.embedContent({ model: 'gemini-embedding-001', contents: 'x' });
  assert.equal(one.embeddings[0].values.length, 3072);
  assert.ok(Math.abs(Math.hypot(...one.embeddings[0].values) - 1) < 1e-5);

  const p = (model, body) => rawPost(modelPath(model, 'predict'), body);
  const ok = await p('text-embedding-005', { instances: [{ content: 'first text' }], parameters: { outputDimensionality: 8 } });
  assert.equal(ok.status, 200);
  assert.deepEqual(Object.keys(ok.json), ['predictions', 'metadata']);
  assert.deepEqual(Object.keys(ok.json.predictions[0].embeddings), ['statistics', 'values']);
  assert.deepEqual(ok.json.predictions[0].embeddings.values, r.embeddings[0].values, 'deterministic per (model, text, dims)');
  const long = 'y'.repeat(9000); // 2250 tokens > 2048
  const cut = await p('text-embedding-005', { instances: [{ content: long }] });
  assert.deepEqual(cut.json.predictions[0].embeddings.statistics, { truncated: true, token_count: 2048 });
  const cases = [
    ['gemini-embedding-001', { instances: [{ content: 'a' }, { content: 'b' }] }, /supports only 1 instance per request/],
    ['text-embedding-005', { instances: [{ content: long }], parameters: { autoTruncate: false } }, /input token count is 2250/],
    ['text-embedding-005', { instances: [] }, /instances must not be empty/],
    ['text-embedding-005', { instances: [{ content: 'a' }], parameters: { outputDimensionality: 769 } }, /outputDimensionality/],
    ['text-embedding-005', { instances: [{ content: 'a', task_type: 'NOPE' }] }, /unknown task type/],
    ['text-embedding-005', { instances: [{ text: 'a' }] }, /Invalid instance field "text"/],
    [GEMINI, { instances: [{ content: 'a' }] }, /Gemini cannot be accessed through Vertex Predict\/RawPredict API/],
  ];
  for (const [model, body, re] of cases) {
    const e = await p(model, body);
    assert.equal(e.status, 400, JSON.stringify(body).slice(0, 80));
    assert.equal(e.json.error.status, 'INVALID_ARGUMENT');
    assert.match(e.json.error.message, re);
  }
  const forced = await genaiError(ai.models.embedContent({ model: 'text-embedding-005', contents: 'x [vertex:status=429]' }));
  assert.equal(forced.status, 429);
  assert.equal(forced.body.error.status, 'RESOURCE_EXHAUSTED');
});

test('the token endpoint checks the JWT: signature, issuer, audience, times, scope, grant', T, async () => {
  const m = new VertexMock(); // default: aud must be the mock's own token URI
  await m.start();
  try {
    const acct = m.createServiceAccount();
    assert.equal(acct.type, 'service_account');
    assert.equal(acct.token_uri, m.tokenUri);
    assert.equal(acct.project_id, DEFAULT_PROJECT);
    assert.match(acct.private_key, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.match(acct.private_key_id, /^[0-9a-f]{40}$/);
    const grant = (claims, key = acct, header) => tokenPost({ grant_type: JWT_BEARER_GRANT, assertion: signJwt(key, claims, header) }, m);
    const now = Date.now();

    const good = await grant(assertionClaims(acct));
    assert.equal(good.status, 200);
    assert.deepEqual(Object.keys(good.json), ['access_token', 'expires_in', 'token_type']);
    assert.equal(good.json.token_type, 'Bearer');
    assert.equal(good.json.expires_in, 3599);
    assert.match(good.json.access_token, /^ya29\./);
    const use = await rawPost(modelPath(PLAIN, 'generateContent'), userBody('hi'), bearer(good.json.access_token), m);
    assert.equal(use.status, 200);
    assert.equal(m.recorded().at(-1).auth, 'issued');
    // Clock skew: iat up to 5 minutes ahead is fine.
    assert.equal((await grant(assertionClaims(acct, { now: now + 240_000 }))).status, 200);

    const other = makeServiceAccount({ tokenUri: m.tokenUri, clientEmail: acct.client_email }).json; // same email, another key
    const refused = [
      [await grant(assertionClaims(acct), other), 'invalid_grant', /^Invalid JWT Signature\.$/],
      [await grant(assertionClaims(acct), acct, { alg: 'HS256', typ: 'JWT' }), 'invalid_grant', /Invalid JWT Signature/],
      [await grant({ ...assertionClaims(acct), iss: 'nobody@x.iam.gserviceaccount.com' }), 'invalid_grant', /account not found/],
      [await grant(assertionClaims(acct, { aud: GOOGLE_TOKEN_URI })), 'invalid_grant', /Failed audience check/],
      [await grant(assertionClaims(acct, { lifetime: 3601 })), 'invalid_grant', /short-lived token \(60 minutes\)/],
      [await grant(assertionClaims(acct, { now: now - 3_960_000 })), 'invalid_grant', /reasonable timeframe/], // expired 6 min ago
      [await grant(assertionClaims(acct, { now: now + 400_000 })), 'invalid_grant', /reasonable timeframe/], // iat 6.7 min ahead
      [await grant(assertionClaims(acct, { scope: 'https://www.googleapis.com/auth/devstorage.read_only' })), 'invalid_scope', /Invalid OAuth scope/],
      [await grant({ iss: acct.client_email, aud: m.tokenUri, iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 60 }), 'invalid_scope', /scope/],
      [await tokenPost({ grant_type: 'client_credentials', assertion: 'x' }, m), 'unsupported_grant_type', /Invalid grant_type/],
      [await tokenPost({ grant_type: JWT_BEARER_GRANT, assertion: 'not.a.jwt!' }, m), 'invalid_grant', /Invalid JWT/],
      [await tokenPost({ grant_type: JWT_BEARER_GRANT }, m), 'invalid_request', /assertion/],
      [await tokenPost(JSON.stringify({ grant_type: JWT_BEARER_GRANT }), m, { 'content-type': 'application/json' }), 'invalid_request', /x-www-form-urlencoded/],
    ];
    for (const [r, error, re] of refused) {
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json.error, error);
      assert.match(r.json.error_description, re);
    }
    assert.equal(m.tokenRequestCount, 2 + refused.length);
    assert.equal(m.issuedTokenCount, 2);
    assert.ok(!JSON.stringify(m.tokenRecords()).includes(good.json.access_token), 'issued tokens are not recorded');
    // A key registered by hand (the gateway's tests may bring their own) works the same.
    const own = makeServiceAccount({ tokenUri: m.tokenUri, clientEmail: 'own@p.iam.gserviceaccount.com' });
    m.addServiceAccount(own.json.client_email, own.publicKey);
    assert.equal((await grant(assertionClaims(own.json), own.json)).status, 200);
  } finally {
    await m.stop();
  }
});

test('access tokens: lifetime, expiry and revocation give 401 UNAUTHENTICATED; a short lifetime makes the client refresh', T, async () => {
  let clock = Date.now();
  const m = new VertexMock({ tokenLifetimeSec: 60, now: () => clock, audiences: [GOOGLE_TOKEN_URI], accessToken: null });
  await m.start();
  try {
    const acct = m.createServiceAccount();
    const issue = async () => (await tokenPost({ grant_type: JWT_BEARER_GRANT, assertion: signJwt(acct, assertionClaims(acct, { now: clock })) }, m)).json;
    const t = await issue();
    assert.equal(t.expires_in, 60);
    const call = (token) => rawPost(modelPath(PLAIN, 'generateContent'), userBody('hi'), bearer(token), m);
    assert.equal((await call(t.access_token)).status, 200);
    clock += 61_000;
    const expired = await call(t.access_token);
    assert.equal(expired.status, 401);
    assert.deepEqual(Object.keys(expired.json.error), ['code', 'message', 'status', 'details']);
    assert.equal(expired.json.error.code, 401);
    assert.equal(expired.json.error.status, 'UNAUTHENTICATED');
    assert.equal(expired.json.error.message, UNAUTHENTICATED_MESSAGE);
    assert.equal(expired.json.error.details[0].reason, 'ACCESS_TOKEN_EXPIRED');
    assert.equal(m.recorded().at(-1).auth, 'expired');

    m.tokenLifetimeSec = 3599;
    const t2 = await issue();
    assert.equal((await call(t2.access_token)).status, 200);
    m.expireTokens();
    assert.equal((await call(t2.access_token)).json.error.details[0].reason, 'ACCESS_TOKEN_EXPIRED');
    const t3 = await issue();
    m.revokeTokens();
    const revoked = await call(t3.access_token);
    assert.equal(revoked.status, 401);
    assert.equal(revoked.json.error.details[0].reason, 'ACCESS_TOKEN_TYPE_UNSUPPORTED');
    assert.equal((await call(DEFAULT_ACCESS_TOKEN)).status, 401, 'accessToken: null turns the static token off');
    const missing = await rawPost(modelPath(PLAIN, 'generateContent'), userBody('hi'), {}, m);
    assert.equal(missing.status, 401);
    assert.equal(missing.json.error.details[0].reason, 'CREDENTIALS_MISSING');
    assert.match(missing.json.error.message, /^Request is missing required authentication credential\./);
    const basic = await rawPost(modelPath(PLAIN, 'generateContent'), userBody('hi'), { authorization: 'Basic abc' }, m);
    assert.equal(basic.status, 401);
    assert.ok(!JSON.stringify(m.recorded()).includes(t2.access_token), 'tokens are redacted from the record');

    // google-auth-library refreshes a token that expires within 5 minutes before each call: with a
    // 60 s lifetime every call fetches a new one; with the default one call fetches one for all.
    clock = Date.now();
    m.clearTokenRequests();
    m.tokenLifetimeSec = 60;
    const file = m.writeServiceAccountFile().path;
    const ai = genai(m, file);
    for (let i = 0; i < 3; i++) assert.equal((await ai.models.generateContent({ model: PLAIN, contents: `n${i}` })).text, DEFAULT_REPLY);
    assert.equal(m.issuedTokenCount, 3);
    m.tokenLifetimeSec = 3599;
    const ai2 = genai(m, m.writeServiceAccountFile().path);
    for (let i = 0; i < 3; i++) await ai2.models.generateContent({ model: PLAIN, contents: `m${i}` });
    assert.equal(m.issuedTokenCount, 4);
    const e = await genaiError(genai(m, file, { project: 'someone-else' }).models.generateContent({ model: PLAIN, contents: 'x' }));
    assert.equal(e.status, 403);
  } finally {
    await m.stop();
  }
});

test('errors in Google\'s envelope: 403 wrong project, 404 unknown model or publisher, 429 quota, forced statuses', T, async () => {
  const ai = genai();
  const denied = await rawPost(modelPath(PLAIN, 'generateContent', { project: 'not-mine' }), userBody('x'));
  assert.equal(denied.status, 403);
  assert.equal(denied.json.error.status, 'PERMISSION_DENIED');
  assert.match(denied.json.error.message, /^Permission 'aiplatform\.endpoints\.predict' denied on resource '\/\/aiplatform\.googleapis\.com\/projects\/not-mine\//);
  assert.equal(denied.json.error.details[0].reason, 'IAM_PERMISSION_DENIED');

  const nf = await genaiError(ai.models.generateContent({ model: 'gemini-9-ultra', contents: 'x' }));
  assert.equal(nf.status, 404);
  assert.equal(nf.body.error.status, 'NOT_FOUND');
  assert.match(nf.body.error.message, /^Publisher Model `projects\/llmgw-mock-project\/locations\/us-central1\/publishers\/google\/models\/gemini-9-ultra` was not found or your project does not have access to it\./);
  const nfClaude = await rawPost(modelPath('claude-9@20990101', 'rawPredict', { publisher: 'anthropic' }), claudeBody('x'));
  assert.equal(nfClaude.status, 404);
  assert.equal(nfClaude.json.error.status, 'NOT_FOUND');
  const publisher = await rawPost(modelPath('llama', 'rawPredict', { publisher: 'meta' }), {});
  assert.equal(publisher.status, 404);
  assert.equal(publisher.json.error.status, 'NOT_FOUND');
  const route = await rawPost(`/v1/projects/${DEFAULT_PROJECT}/locations/${LOCATION}/publishers/google/models/${PLAIN}:frobnicate`, userBody('x'));
  assert.equal(route.status, 404);
  assert.match(route.headers['content-type'], /^text\/html/);

  const quota = await genaiError(ai.models.generateContent({ model: PLAIN, contents: 'x [vertex:status=429]' }));
  assert.equal(quota.status, 429);
  assert.deepEqual(quota.body, { error: { code: 429, message: 'Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.', status: 'RESOURCE_EXHAUSTED' } });
  const retry = await genaiError(ai.models.generateContent({ model: PLAIN, contents: 'x [mock:status=429][mock:retry_after=7]' }));
  assert.deepEqual(retry.body.error.details, [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' }]);
  for (const [status, name] of [[400, 'INVALID_ARGUMENT'], [401, 'UNAUTHENTICATED'], [500, 'INTERNAL'], [503, 'UNAVAILABLE'], [504, 'DEADLINE_EXCEEDED']]) {
    const e = await genaiError(ai.models.generateContent({ model: PLAIN, contents: `x [mock:status=${status}]` }));
    assert.equal(e.status, status);
    assert.equal(e.body.error.status, name);
  }
  const bad = await genaiError(ai.models.generateContent({ model: PLAIN, contents: 'x', config: { temperature: 5 } }));
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /temperature/);
  const unknown = await rawPost(modelPath(PLAIN, 'generateContent'), userBody('x [vertex:nope=1]'));
  assert.equal(unknown.status, 400);
  assert.deepEqual(parseVertexDirectives('a [vertex:status=429] [vertex:retry_after=3] [mock:reply=x]'), { status: 429, retry_after: 3 });
});

test('Claude through @anthropic-ai/vertex-sdk: rawPredict, streamRawPredict, tools, errors', T, async () => {
  mock.clearRequests();
  const client = claudeClient();
  const r = await client.messages.create({ model: CLAUDE, max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user', content: 'hello' }] });
  assert.equal(r.type, 'message');
  assert.equal(r.model, CLAUDE);
  assert.deepEqual(r.content, [{ type: 'text', text: DEFAULT_REPLY }]);
  assert.equal(r.stop_reason, 'end_turn');
  assert.equal(r.usage.output_tokens, 9);
  const [rec] = mock.recorded();
  assert.equal(rec.path, `/v1/projects/${DEFAULT_PROJECT}/locations/us-east5/publishers/anthropic/models/${CLAUDE}:rawPredict`);
  assert.equal(rec.auth, 'issued');
  assert.equal(rec.body.anthropic_version, ANTHROPIC_VERTEX_VERSION);
  assert.equal(rec.body.model, undefined, 'the SDK moves the model into the URL');
  assert.equal(rec.headers['anthropic-version'], undefined);

  const texts = [];
  const s = client.messages.stream({ model: CLAUDE, max_tokens: 100, messages: [{ role: 'user', content: 'hello' }] });
  s.on('text', (t) => texts.push(t));
  const final = await s.finalMessage();
  assert.equal(texts.join(''), DEFAULT_REPLY);
  assert.deepEqual(final.content, r.content);
  assert.equal(mock.recorded().at(-1).action, 'streamRawPredict');

  const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
  const tu = await client.messages.create({ model: CLAUDE, max_tokens: 200, tools, tool_choice: { type: 'any' }, messages: [{ role: 'user', content: 'weather?' }] });
  assert.equal(tu.stop_reason, 'tool_use');
  assert.deepEqual(tu.content.filter((b) => b.type === 'tool_use').map((b) => [b.name, b.input]), [['get_weather', { city: 'mock' }]]);

  // Anthropic's errors come through in Anthropic's shape; Vertex's own in Google's. The SDK
  // raises both as APIError with the status.
  const over = await client.messages.create({ model: CLAUDE, max_tokens: 10, messages: [{ role: 'user', content: 'x [mock:status=529]' }] }).catch((e) => e);
  assert.equal(over.status, 529);
  assert.equal(over.error.error.type, 'overloaded_error');
  assert.equal(mock.recorded().at(-1).error_shape, 'anthropic');
  const quota = await client.messages.create({ model: CLAUDE, max_tokens: 10, messages: [{ role: 'user', content: 'x [vertex:status=429]' }] }).catch((e) => e);
  assert.equal(quota.status, 429);
  assert.equal(quota.error.error.status, 'RESOURCE_EXHAUSTED');
  assert.equal(mock.recorded().at(-1).error_shape, 'google');
  const nf = await client.messages.create({ model: 'claude-0@20200101', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
  assert.equal(nf.status, 404);
  const tooMany = await client.messages.create({ model: 'claude-3-5-haiku@20241022', max_tokens: 9000, messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
  assert.equal(tooMany.status, 400);
  assert.match(tooMany.message, /max_tokens: 9000 > 8192/);

  // vertex-sdk 1.1.5 copies the base SDK's anthropic-version header (2026-10-21) into the body
  // when none is set; Vertex documents vertex-2023-10-16 only, and the mock holds to that.
  const dflt = claudeClient(mock, sa.path, { defaultHeaders: {} });
  const e = await dflt.messages.create({ model: CLAUDE, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).catch((x) => x);
  assert.equal(e.status, 400);
  assert.match(e.message, /anthropic_version: Input should be 'vertex-2023-10-16'/);
});

test('rawPredict body rules, and answers byte for byte the Anthropic mock\'s', T, async () => {
  const raw = (action, body) => rawPost(modelPath(CLAUDE, action, { publisher: 'anthropic' }), body);
  const cases = [
    [claudeBody('x', { anthropic_version: undefined }), /^anthropic_version: Field required$/],
    [claudeBody('x', { anthropic_version: '2023-06-01' }), /anthropic_version: Input should be 'vertex-2023-10-16'/],
    [claudeBody('x', { model: CLAUDE }), /^model: Extra inputs are not permitted$/],
    [claudeBody('x', { stream: true }), /needs streamRawPredict/],
    [claudeBody('x', { max_tokens: undefined }), /max_tokens: Field required/],
    [claudeBody('x [mock:nope]'), /unknown mock directive/],
  ];
  for (const [body, re] of cases) {
    const r = await raw('rawPredict', JSON.parse(JSON.stringify(body)));
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.json.type, 'error');
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.match(r.json.error.message, re);
  }
  const notStream = await raw('streamRawPredict', claudeBody('x'));
  assert.equal(notStream.status, 400);
  const badJson = await raw('rawPredict', '{nope');
  assert.equal(badJson.status, 400);
  assert.equal(badJson.json.error.type, 'invalid_request_error', 'rawPredict bodies are parsed by Anthropic\'s API');

  // The same conversation sent to the Anthropic mock (with the model in the body) answers the same bytes.
  const anth = new AnthropicMock({ anyModel: true });
  await anth.start();
  try {
    const conv = { max_tokens: 200, system: 'S', messages: [{ role: 'user', content: 'hello [mock:reply=one two three]' }] };
    const a = await request(anth.port, { method: 'POST', path: '/v1/messages', body: { model: CLAUDE, ...conv },
      headers: { 'x-api-key': anth.apiKey, 'anthropic-version': '2023-06-01' } });
    const v = await raw('rawPredict', { anthropic_version: ANTHROPIC_VERTEX_VERSION, ...conv });
    assert.equal(v.status, 200);
    assert.equal(v.headers['content-type'], 'application/json');
    assert.equal(v.text, a.text);
    const as = await stream(anth.port, { path: '/v1/messages', body: { model: CLAUDE, stream: true, ...conv },
      headers: { 'x-api-key': anth.apiKey, 'anthropic-version': '2023-06-01' } });
    const vs = await stream(mock.port, { path: modelPath(CLAUDE, 'streamRawPredict', { publisher: 'anthropic' }), headers: bearer(),
      body: { anthropic_version: ANTHROPIC_VERTEX_VERSION, stream: true, ...conv } });
    assert.equal(vs.status, 200);
    assert.equal(vs.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(vs.raw, as.raw);
    assert.match(vs.raw, /^event: message_start\ndata: /);
    assert.ok(vs.raw.endsWith('event: message_stop\ndata: {"type":"message_stop"}\n\n'));
  } finally {
    await anth.stop();
  }
});

test('CLI: listening line, a service-account file, the admin routes', T, async () => {
  const dir = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'vertex-cli-'));
  const file = path.join(dir, 'sa.json');
  const mockFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'vertex_mock.mjs');
  const { line, stop } = await spawnMockProgram(mockFile, ['--project', 'p1,p2', '--access-token', 'ya29.cli', '--token-lifetime', '120', '--service-account-file', file]);
  try {
    assert.equal(line.event, 'listening');
    assert.equal(line.token_uri, `${line.base_url}/token`);
    assert.deepEqual(line.projects, ['p1', 'p2']);
    assert.equal(line.access_token, 'ya29.cli');
    assert.equal(line.token_lifetime_sec, 120);
    assert.equal(line.service_account_file, file);
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(json.token_uri, line.token_uri);
    assert.equal(json.project_id, 'p1');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const tok = await request(line.port, { method: 'POST', path: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion: signJwt(json, assertionClaims(json)) }).toString() });
    assert.equal(tok.json.expires_in, 120);
    const p2 = `/v1/projects/p2/locations/europe-west4/publishers/google/models/${PLAIN}:generateContent`;
    assert.equal((await request(line.port, { method: 'POST', path: p2, headers: bearer(tok.json.access_token), body: userBody('hi') })).status, 200);
    assert.equal((await request(line.port, { method: 'POST', path: p2, headers: bearer('ya29.cli'), body: userBody('hi') })).status, 200);
    const tokens = await request(line.port, { path: '/__mock/tokens' });
    assert.equal(tokens.json.issued, 1);
    assert.equal(tokens.json.requests[0].claims.iss, json.client_email);
    assert.equal((await request(line.port, { method: 'POST', path: '/__mock/tokens/expire' })).status, 204);
    const exp = await request(line.port, { method: 'POST', path: p2, headers: bearer(tok.json.access_token), body: userBody('hi') });
    assert.equal(exp.status, 401);
    assert.equal((await request(line.port, { method: 'POST', path: '/__mock/token_lifetime?seconds=5' })).status, 204);
    const fresh = await request(line.port, { method: 'POST', path: '/__mock/service_accounts' });
    assert.equal(fresh.json.token_uri, line.token_uri);
    const tok2 = await request(line.port, { method: 'POST', path: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion: signJwt(fresh.json, assertionClaims(fresh.json)) }).toString() });
    assert.equal(tok2.json.expires_in, 5);
    const recs = await request(line.port, { path: '/__mock/requests?min=3&timeout_ms=1000' });
    assert.deepEqual(recs.json.map((r) => [r.project, r.location, r.auth, r.status]),
      [['p2', 'europe-west4', 'issued', 200], ['p2', 'europe-west4', 'static', 200], ['p2', 'europe-west4', 'expired', 401]]);
    assert.equal((await request(line.port, { method: 'DELETE', path: '/__mock/tokens' })).status, 204);
    assert.equal((await request(line.port, { path: '/__mock/tokens' })).json.request_count, 0);
  } finally {
    await stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a JWT signed with a key the mock never saw is refused even with a known email (crypto check, not a lookup)', T, async () => {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const forged = { ...sa.json, private_key: privateKey };
  const r = await tokenPost({ grant_type: JWT_BEARER_GRANT, assertion: signJwt(forged, assertionClaims(forged, { aud: mock.tokenUri })) });
  assert.equal(r.status, 400);
  assert.equal(r.json.error_description, 'Invalid JWT Signature.');
  // Tampering with the claims after signing breaks the signature too.
  const [h, , s] = signJwt(sa.json, assertionClaims(sa.json)).split('.');
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...assertionClaims(sa.json), scope: `${CLOUD_PLATFORM_SCOPE} extra` })).toString('base64url')}.${s}`;
  assert.equal((await tokenPost({ grant_type: JWT_BEARER_GRANT, assertion: tampered })).json.error_description, 'Invalid JWT Signature.');
});
