// Self-test of the mock Gemini upstream, driven by Google's official SDK (@google/genai): if
// the SDK decodes the mock's JSON, its CRLF-framed SSE and its error shapes into its own types,
// tests built on the mock exercise what real clients see. No gateway needed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GoogleGenAI, ApiError, FunctionCallingConfigMode } from '@google/genai';

import { GeminiMock, DEFAULT_MODELS, THINKING_TEXT, MEDIA_TOKENS, parseDirectives } from './gemini_mock.mjs';
import { DEFAULT_REPLY } from './openai_mock.mjs';
import { request, spawnMockProgram, stream } from '../integration/harness.mjs';

const T = { timeout: 20_000 };
const MODEL = 'gemini-2.5-flash';
const PLAIN = 'gemini-2.0-flash'; // a model that does not think
let mock;
let ai;

before(async () => {
  mock = new GeminiMock();
  await mock.start();
  ai = new GoogleGenAI({ apiKey: mock.apiKey, httpOptions: { baseUrl: mock.url } });
});

after(async () => {
  await mock?.stop();
});

const gen = (contents, config = {}, model = MODEL) => ai.models.generateContent({ model, contents, config });
const rawPost = (p, body, headers = { 'x-goog-api-key': mock.apiKey }) => request(mock.port, { method: 'POST', path: p, headers, body });
const userBody = (text, extra = {}) => ({ contents: [{ role: 'user', parts: [{ text }] }], ...extra });

/** Parses a Gemini SSE text strictly: every event is exactly `data: JSON\r\n\r\n`. */
function strictFrames(raw) {
  assert.ok(raw.length > 0, 'the stream is not empty');
  assert.match(raw, /^(data: \{[^\r\n]*\}\r\n\r\n)+$/, 'every event is `data: {json}` followed by CRLF CRLF');
  return raw.slice(0, -4).split('\r\n\r\n').map((e) => JSON.parse(e.slice('data: '.length)));
}

const f0 = (frames) => frames[0].usageMetadata;

/** The ApiError a call rejects with (asserting it is one). */
async function apiError(promise) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof ApiError, `an ApiError, got ${e?.constructor?.name}: ${e?.message}`);
    return { status: e.status, body: JSON.parse(e.message.replace(/^got status: \w+\. /, '')) };
  }
  assert.fail('the call did not fail');
}

const WEATHER = {
  name: 'get_weather', description: 'Current weather of a city',
  parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' }, unit: { type: 'STRING', enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'unit'] },
};
const TIME = { name: 'get_time', description: 'Local time', parametersJsonSchema: { type: 'object', properties: { tz: { type: 'string' } }, required: ['tz'] } };

test('generateContent: the response shape, usage, recording without the key', T, async () => {
  mock.clearRequests();
  const r = await gen('hello', { temperature: 0.5, systemInstruction: 'Be brief.' }, PLAIN);
  assert.equal(r.text, DEFAULT_REPLY);
  assert.equal(r.modelVersion, PLAIN);
  assert.match(r.responseId, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(r.candidates.length, 1);
  const c = r.candidates[0];
  assert.deepEqual(c.content, { parts: [{ text: DEFAULT_REPLY }], role: 'model' });
  assert.equal(c.finishReason, 'STOP');
  assert.equal(c.index, 0);
  // prompt: ⌈5/4⌉ (hello) + ⌈9/4⌉ (system) = 2 + 3; 9 reply pieces; no thinking on 2.0 Flash.
  assert.equal(r.usageMetadata.promptTokenCount, 5);
  assert.equal(r.usageMetadata.candidatesTokenCount, 9);
  assert.equal(r.usageMetadata.totalTokenCount, 14);
  assert.equal(r.usageMetadata.thoughtsTokenCount, undefined, 'zero counts are omitted, as proto3 JSON does');
  assert.equal(r.usageMetadata.cachedContentTokenCount, undefined);
  const [rec] = mock.recorded();
  assert.equal(rec.method, 'POST');
  assert.equal(rec.path, `/v1beta/models/${PLAIN}:generateContent`);
  assert.equal(rec.api_key_via, 'header');
  assert.equal(rec.api_key_ok, true);
  assert.equal(rec.headers['x-goog-api-key'], '[redacted]');
  assert.ok(!JSON.stringify(rec).includes(mock.apiKey), 'the key is never recorded');
  assert.deepEqual(rec.body.contents, [{ parts: [{ text: 'hello' }], role: 'user' }]);
  assert.deepEqual(rec.body.systemInstruction.parts, [{ text: 'Be brief.' }]);
  assert.equal(rec.body.generationConfig.temperature, 0.5);
  assert.equal(rec.status, 200);
  assert.equal(rec.completed, true);

  // Raw: Google's pretty-printed JSON, members in Google's order; the key as ?key= works too.
  const raw = await rawPost(`/v1beta/models/${PLAIN}:generateContent?key=${mock.apiKey}`, userBody('hello'), {});
  assert.equal(raw.status, 200);
  assert.equal(raw.headers['content-type'], 'application/json; charset=UTF-8');
  assert.ok(raw.text.startsWith('{\n  "candidates": [\n'), 'pretty-printed, candidates first');
  assert.deepEqual(Object.keys(raw.json), ['candidates', 'usageMetadata', 'modelVersion', 'responseId']);
  assert.deepEqual(Object.keys(raw.json.candidates[0]), ['content', 'finishReason', 'index']);
  const last = mock.recorded().at(-1);
  assert.equal(last.api_key_via, 'query');
  assert.deepEqual(last.query, {}, 'the key query parameter is not recorded');
  assert.ok(!JSON.stringify(last).includes(mock.apiKey));
});

test('generateContentStream: chunks, running usage totals, the last chunk equals generateContent', T, async () => {
  const plain = await gen('same answer', {}, PLAIN);
  const chunks = [];
  for await (const ch of await ai.models.generateContentStream({ model: PLAIN, contents: 'same answer' })) chunks.push(ch);
  assert.equal(chunks.length, 9, 'one chunk per reply piece');
  assert.equal(chunks.map((ch) => ch.text).join(''), DEFAULT_REPLY);
  assert.deepEqual(chunks.map((ch) => ch.usageMetadata.candidatesTokenCount), [1, 2, 3, 4, 5, 6, 7, 8, 9], 'running totals');
  assert.ok(chunks.every((ch) => ch.usageMetadata.promptTokenCount === plain.usageMetadata.promptTokenCount));
  assert.deepEqual(chunks.slice(0, -1).map((ch) => ch.candidates[0].finishReason), Array(8).fill(undefined));
  const final = chunks.at(-1);
  assert.equal(final.candidates[0].finishReason, 'STOP');
  assert.deepEqual(final.usageMetadata, plain.usageMetadata, 'the last chunk\'s usage is the whole call\'s');
  assert.ok(chunks.every((ch) => ch.responseId === plain.responseId && ch.modelVersion === PLAIN));
  const rec = mock.recorded().at(-1);
  assert.equal(rec.path, `/v1beta/models/${PLAIN}:streamGenerateContent`);
  assert.deepEqual(rec.query, { alt: 'sse' });
  assert.equal(rec.events_sent, 9);
});

test('SSE framing: data: {json} CRLF CRLF, one event per write, usage on every chunk', T, async () => {
  const r = await stream(mock.port, { path: `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`,
    headers: { 'x-goog-api-key': mock.apiKey }, body: userBody('s [mock:chunks=3]') });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/event-stream');
  assert.ok(r.complete);
  assert.ok(!/(^|[^\r])\n/.test(r.raw), 'no bare LF anywhere: lines end with CRLF');
  const frames = strictFrames(r.raw);
  assert.equal(frames.length, 3);
  assert.deepEqual(frames.map((f) => f.candidates[0].content.parts[0].text), ['tok0', ' tok1', ' tok2']);
  assert.ok(frames.every((f) => f.candidates[0].content.role === 'model' && f.candidates[0].index === 0));
  assert.deepEqual(frames.map((f) => f.usageMetadata.candidatesTokenCount), [1, 2, 3]);
  // Thinking (2.5 Flash thinks by default) is counted from the first chunk on.
  const thoughts = THINKING_TEXT.split(' ').length;
  assert.ok(frames.every((f) => f.usageMetadata.thoughtsTokenCount === thoughts));
  assert.deepEqual(frames.map((f) => f.usageMetadata.totalTokenCount), [1, 2, 3].map((n) => f0(frames).promptTokenCount + n + thoughts));
  assert.equal(frames[2].candidates[0].finishReason, 'STOP');
  assert.ok(!('finishReason' in frames[0].candidates[0]));
  // Without ?alt=sse the mock refuses rather than send a JSON array it does not implement.
  const noSse = await rawPost(`/v1beta/models/${MODEL}:streamGenerateContent`, userBody('x'));
  assert.equal(noSse.status, 400);
});

test('function calling: AUTO with a directive, ANY with allowedFunctionNames, NONE, and the round trip', T, async () => {
  const tools = [{ functionDeclarations: [WEATHER, TIME] }];
  const auto = await gen('weather in Paris? [mock:function_call]', { tools });
  assert.deepEqual(auto.functionCalls.map(({ name, args }) => ({ name, args })), [{ name: 'get_weather', args: { city: 'mock', unit: 'celsius' } }]);
  assert.deepEqual(auto.candidates[0].content.parts, [{ functionCall: { name: 'get_weather', args: { city: 'mock', unit: 'celsius' } } }]);
  assert.equal(auto.candidates[0].finishReason, 'STOP');
  const noDirective = await gen('weather in Paris?', { tools });
  assert.equal(noDirective.functionCalls, undefined, 'AUTO without a directive answers in text');

  const any = await gen('what time is it?', { tools, toolConfig: { functionCallingConfig: { mode: FunctionCallingConfigMode.ANY, allowedFunctionNames: ['get_time'] } } });
  assert.deepEqual(any.functionCalls.map(({ name, args }) => ({ name, args })), [{ name: 'get_time', args: { tz: 'mock' } }]);
  const none = await gen('weather? [mock:function_call]', { tools, toolConfig: { functionCallingConfig: { mode: FunctionCallingConfigMode.NONE } } });
  assert.equal(none.functionCalls, undefined);
  assert.equal(none.text, DEFAULT_REPLY);
  const args = await gen('w [mock:function_call=get_time][mock:function_args={"tz":"Europe/Paris"}]', { tools });
  assert.deepEqual(args.functionCalls[0].args, { tz: 'Europe/Paris' });

  const second = await ai.models.generateContent({ model: MODEL, config: { tools }, contents: [
    { role: 'user', parts: [{ text: 'weather in Paris? [mock:function_call]' }] },
    auto.candidates[0].content,
    { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp: 18 } } }] },
  ] });
  assert.equal(second.text, 'Function result: {"temp":18}');
  // Streamed: the call comes whole in one chunk.
  const chunks = [];
  for await (const ch of await ai.models.generateContentStream({ model: MODEL, contents: 'w [mock:function_call=get_time]', config: { tools } })) chunks.push(ch);
  assert.equal(chunks.length, 1);
  assert.deepEqual(chunks[0].functionCalls.map((f) => f.name), ['get_time']);

  const bad = await apiError(gen('x', { tools, toolConfig: { functionCallingConfig: { mode: 'AUTO', allowedFunctionNames: ['get_time'] } } }));
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.status, 'INVALID_ARGUMENT');
});

test('thinking: thought parts with includeThoughts, thoughtsTokenCount, budget 0 turns it off', T, async () => {
  const thoughts = THINKING_TEXT.split(' ').length;
  const r = await gen('hi', { thinkingConfig: { includeThoughts: true, thinkingBudget: 1024 } });
  const parts = r.candidates[0].content.parts;
  assert.deepEqual(parts, [{ text: THINKING_TEXT, thought: true }, { text: DEFAULT_REPLY }]);
  assert.equal(r.text, DEFAULT_REPLY, 'the SDK leaves thoughts out of .text');
  assert.equal(r.usageMetadata.thoughtsTokenCount, thoughts);
  assert.equal(r.usageMetadata.totalTokenCount, r.usageMetadata.promptTokenCount + 9 + thoughts);

  const hidden = await gen('hi', { thinkingConfig: { thinkingBudget: -1 } });
  assert.deepEqual(hidden.candidates[0].content.parts, [{ text: DEFAULT_REPLY }], 'no thought parts without includeThoughts');
  assert.equal(hidden.usageMetadata.thoughtsTokenCount, thoughts, 'but the thinking is billed');
  const off = await gen('hi', { thinkingConfig: { thinkingBudget: 0 } });
  assert.equal(off.usageMetadata.thoughtsTokenCount, undefined);

  const chunks = [];
  for await (const ch of await ai.models.generateContentStream({ model: MODEL, contents: 'hi', config: { thinkingConfig: { includeThoughts: true } } })) chunks.push(ch);
  assert.equal(chunks.length, thoughts + 9);
  assert.ok(chunks.slice(0, thoughts).every((ch) => ch.candidates[0].content.parts[0].thought === true));
  assert.deepEqual(chunks.slice(0, thoughts).map((ch) => ch.usageMetadata.thoughtsTokenCount), Array.from({ length: thoughts }, (_, i) => i + 1));
  assert.deepEqual(chunks.at(-1).usageMetadata, r.usageMetadata);

  const plain = await apiError(gen('hi', { thinkingConfig: { thinkingBudget: 512 } }, PLAIN));
  assert.equal(plain.status, 400);
});

test('generationConfig: maxOutputTokens, stopSequences, candidateCount, JSON mode, finish_reason', T, async () => {
  const cut = await gen('hi', { maxOutputTokens: 3 }, PLAIN);
  assert.equal(cut.text, 'Hello! How');
  assert.equal(cut.candidates[0].finishReason, 'MAX_TOKENS');
  assert.equal(cut.usageMetadata.candidatesTokenCount, 3);
  const stop = await gen('hi', { stopSequences: [' can'] }, PLAIN);
  assert.equal(stop.text, 'Hello! How');
  assert.equal(stop.candidates[0].finishReason, 'STOP');
  const two = await gen('hi', { candidateCount: 2 }, PLAIN);
  assert.deepEqual(two.candidates.map((c) => c.index), [0, 1]);
  assert.equal(two.usageMetadata.candidatesTokenCount, 18, 'counted over all candidates');
  const json = await gen('hi', { responseMimeType: 'application/json',
    responseSchema: { type: 'OBJECT', properties: { answer: { type: 'STRING' }, n: { type: 'INTEGER' } }, required: ['answer', 'n'] } }, PLAIN);
  assert.deepEqual(JSON.parse(json.text), { answer: 'mock', n: 1 });
  const safety = await gen('hi [mock:finish_reason=SAFETY]', {}, PLAIN);
  assert.equal(safety.candidates[0].finishReason, 'SAFETY');
  assert.equal(safety.candidates[0].content, undefined, 'a blocked candidate has no content');
  assert.equal(safety.text, undefined);
  const usage = await gen('hi [mock:prompt_tokens=1000][mock:cached_tokens=800][mock:thoughts_tokens=50]', {}, PLAIN);
  assert.equal(usage.usageMetadata.promptTokenCount, 1000);
  assert.equal(usage.usageMetadata.cachedContentTokenCount, 800);
  assert.equal(usage.usageMetadata.thoughtsTokenCount, 50);
  assert.equal(usage.usageMetadata.totalTokenCount, 1000 + 9 + 50);
  const media = await ai.models.generateContent({ model: PLAIN, contents: [{ role: 'user', parts: [
    { text: 'what is it?' }, { inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } }] }] });
  assert.equal(media.usageMetadata.promptTokenCount, 3 + MEDIA_TOKENS);
});

test('validation: Google\'s INVALID_ARGUMENT for malformed requests', T, async () => {
  const cases = [
    [{ contents: [] }, /contents is not specified/],
    [{ contents: [{ role: 'system', parts: [{ text: 'x' }] }] }, /Please use a valid role: user, model\./],
    [{ contents: [{ role: 'user', parts: [] }] }, /parts must not be empty/],
    [{ contents: [{ role: 'user', parts: [{ text: 'a', inlineData: { mimeType: 'image/png', data: 'AA==' } }] }] }, /oneof field 'data' is already set/],
    [{ contents: [{ role: 'user', parts: [{ inlineData: { mimeType: 'image/png', data: '*!' } }] }] }, /Base64 decoding failed/],
    [userBody('x', { generationConfig: { temperature: 3 } }), /temperature must be in the range \[0, 2\]/],
    [userBody('x', { generationConfig: { candidateCount: 9 } }), /candidate_count/],
    [userBody('x', { generationConfig: { maxOutputTokens: 70000 } }), /maximum number of tokens allowed is 65537/],
    [userBody('x', { generationConfig: { responseSchema: { type: 'OBJECT' } } }), /response_mime_type must be/],
    [userBody('x', { generationConfig: { bogus: 1 } }), /Unknown name "bogus"/],
    [userBody('x', { bogus: 1 }), /Unknown name "bogus"/],
    [userBody('x', { tools: [{ functionDeclarations: [{ name: '1bad' }] }] }), /Invalid function name/],
    [userBody('x [mock:nope]'), /unknown mock directive nope/],
    ['{not json', /Invalid JSON payload received/],
  ];
  for (const [body, re] of cases) {
    const r = await rawPost(`/v1beta/models/${MODEL}:generateContent`, body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.json.error.code, 400);
    assert.equal(r.json.error.status, 'INVALID_ARGUMENT');
    assert.match(r.json.error.message, re);
  }
});

test('errors: statuses by directive and for keys, models and routes, as typed ApiErrors', T, async () => {
  const expected = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND',
    429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };
  for (const [status, name] of Object.entries(expected)) {
    const e = await apiError(gen(`x [mock:status=${status}]`));
    assert.equal(e.status, Number(status));
    assert.deepEqual(Object.keys(e.body.error).slice(0, 3), ['code', 'message', 'status']);
    assert.equal(e.body.error.code, Number(status));
    assert.equal(e.body.error.status, name);
  }
  const limited = await apiError(gen('x [mock:status=429][mock:retry_after=7]'));
  assert.deepEqual(limited.body.error.details, [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '7s' }]);

  const badKey = new GoogleGenAI({ apiKey: 'AIza-wrong', httpOptions: { baseUrl: mock.url } });
  const k = await apiError(badKey.models.generateContent({ model: MODEL, contents: 'x' }));
  assert.equal(k.status, 400, 'Google answers a wrong key with 400 INVALID_ARGUMENT');
  assert.equal(k.body.error.message, 'API key not valid. Please pass a valid API key.');
  assert.equal(k.body.error.details[0].reason, 'API_KEY_INVALID');
  const noKey = await rawPost(`/v1beta/models/${MODEL}:generateContent`, userBody('x'), {});
  assert.equal(noKey.status, 403);
  assert.equal(noKey.json.error.status, 'PERMISSION_DENIED');
  assert.equal(mock.recorded().at(-1).api_key_via, null);

  const nf = await apiError(gen('x', {}, 'gemini-9-ultra'));
  assert.equal(nf.status, 404);
  assert.match(nf.body.error.message, /^models\/gemini-9-ultra is not found for API version v1beta/);
  const embedOnly = await apiError(gen('x', {}, 'gemini-embedding-001'));
  assert.equal(embedOnly.status, 404, 'an embedding model does not support generateContent');
  const route = await rawPost('/v1beta/models/gemini-2.5-flash:frobnicate', userBody('x'));
  assert.equal(route.status, 404);
  assert.match(route.headers['content-type'], /^text\/html/);
});

test('stream errors: an error event mid-stream, a cut connection', T, async () => {
  const got = [];
  const err = await apiError((async () => {
    for await (const ch of await ai.models.generateContentStream({ model: PLAIN, contents: 'x [mock:error_after=2]' })) got.push(ch.text);
  })());
  assert.deepEqual(got, ['Hello', '!']);
  assert.equal(err.status, 503);
  assert.equal(err.body.error.status, 'UNAVAILABLE');
  const raw = await stream(mock.port, { path: `/v1beta/models/${PLAIN}:streamGenerateContent?alt=sse`,
    headers: { 'x-goog-api-key': mock.apiKey }, body: userBody('x [mock:error_after=1][mock:error_status=429]') });
  const frames = strictFrames(raw.raw);
  assert.equal(frames.length, 2);
  assert.equal(frames[1].error.code, 429);
  assert.ok(raw.complete);

  mock.clearRequests();
  const seen = [];
  await assert.rejects((async () => {
    for await (const ch of await ai.models.generateContentStream({ model: PLAIN, contents: 'x [mock:cut_after=3]' })) seen.push(ch.text);
  })(), (e) => !(e instanceof ApiError));
  assert.deepEqual(seen, ['Hello', '!', ' How']);
  const [rec] = await mock.waitFor((rs) => rs.length === 1 && rs[0].closed_early, 2_000, 'the cut');
  assert.equal(rec.events_sent, 3);
  assert.equal(rec.completed, false);
});

test('embeddings: the SDK\'s embedContent (batchEmbedContents), raw embedContent, dimensions', T, async () => {
  mock.clearRequests();
  const r = await ai.models.embedContent({ model: 'gemini-embedding-001', contents: ['first', 'second'], config: { outputDimensionality: 16, taskType: 'RETRIEVAL_DOCUMENT' } });
  assert.equal(r.embeddings.length, 2);
  assert.ok(r.embeddings.every((e) => e.values.length === 16));
  assert.notDeepEqual(r.embeddings[0].values, r.embeddings[1].values);
  const rec = mock.recorded()[0];
  assert.equal(rec.path, '/v1beta/models/gemini-embedding-001:batchEmbedContents');
  assert.equal(rec.body.requests[0].model, 'models/gemini-embedding-001');
  assert.equal(rec.body.requests[0].taskType, 'RETRIEVAL_DOCUMENT');

  const one = await rawPost('/v1beta/models/gemini-embedding-001:embedContent', { content: { parts: [{ text: 'first' }] }, outputDimensionality: 16 });
  assert.equal(one.status, 200);
  assert.deepEqual(Object.keys(one.json), ['embedding']);
  assert.deepEqual(one.json.embedding.values, r.embeddings[0].values, 'deterministic per (model, text)');
  const viaConfig = await rawPost('/v1beta/models/gemini-embedding-001:embedContent', { content: { parts: [{ text: 'first' }] }, embedContentConfig: { outputDimensionality: 16 } });
  assert.deepEqual(viaConfig.json.embedding.values, one.json.embedding.values, 'embedContentConfig.outputDimensionality is read too');
  const full = await rawPost('/v1beta/models/text-embedding-004:embedContent', { content: { parts: [{ text: 'x' }] } });
  assert.equal(full.json.embedding.values.length, 768);
  const norm = Math.hypot(...full.json.embedding.values);
  assert.ok(Math.abs(norm - 1) < 1e-5);

  const mismatch = await rawPost('/v1beta/models/gemini-embedding-001:batchEmbedContents', { requests: [{ model: 'models/text-embedding-004', content: { parts: [{ text: 'x' }] } }] });
  assert.equal(mismatch.status, 400);
  const tooBig = await apiError(ai.models.embedContent({ model: 'gemini-embedding-001', contents: 'x', config: { outputDimensionality: 5000 } }));
  assert.equal(tooBig.status, 400);
  const forced = await apiError(ai.models.embedContent({ model: 'gemini-embedding-001', contents: 'x [mock:status=503]' }));
  assert.equal(forced.status, 503);
  const chatModel = await apiError(ai.models.embedContent({ model: MODEL, contents: 'x' }));
  assert.equal(chatModel.status, 404);
});

test('models.list pages with pageSize / nextPageToken; models.get', T, async () => {
  mock.clearRequests();
  const names = [];
  for await (const m of await ai.models.list({ config: { pageSize: 4 } })) names.push(m.name);
  assert.deepEqual(names, DEFAULT_MODELS.map((m) => `models/${m.id}`));
  const recs = mock.recorded();
  assert.equal(recs.length, 2, 'two pages of 4');
  assert.deepEqual(recs.map((r) => r.query.pageSize), ['4', '4']);
  assert.ok(recs[1].query.pageToken);
  const m = await ai.models.get({ model: MODEL });
  assert.equal(m.name, `models/${MODEL}`);
  assert.equal(m.outputTokenLimit, 65536);
  assert.ok(m.supportedActions.includes('generateContent'));
  const missing = await apiError(ai.models.get({ model: 'gemini-0' }));
  assert.equal(missing.status, 404);
});

test('directives parse; the CLI prints its listening line and serves with ?key=', T, async () => {
  assert.deepEqual(parseDirectives('a [mock:status=429] b [mock:function_call] [mock:drop]'), { status: 429, function_call: '', drop: true });
  assert.throws(() => parseDirectives('[mock:cut_after=x]'));
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'gemini_mock.mjs');
  const { line, stop } = await spawnMockProgram(file, ['--api-key', 'AIza-cli', '--models', 'gemini-2.5-flash']);
  try {
    assert.equal(line.event, 'listening');
    assert.equal(line.api_key, 'AIza-cli');
    assert.equal(line.api_version, 'v1beta');
    const cli = new GoogleGenAI({ apiKey: 'AIza-cli', httpOptions: { baseUrl: line.base_url } });
    assert.equal((await cli.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' })).text, DEFAULT_REPLY);
    const list = await request(line.port, { path: '/v1beta/models?key=AIza-cli' });
    assert.deepEqual(list.json.models.map((x) => x.name), ['models/gemini-2.5-flash']);
    const recs = await request(line.port, { path: '/__mock/requests?min=2&timeout_ms=1000' });
    assert.deepEqual(recs.json.map((r) => [r.path, r.api_key_via]), [['/v1beta/models/gemini-2.5-flash:generateContent', 'header'], ['/v1beta/models', 'query']]);
    assert.equal((await request(line.port, { method: 'DELETE', path: '/__mock/requests' })).status, 204);
    assert.deepEqual((await request(line.port, { path: '/__mock/requests' })).json, []);
    assert.equal((await request(line.port, { path: '/__mock/nothing' })).json.error.status, 'NOT_FOUND');
  } finally {
    await stop();
  }
});
