// A mock OpenAI upstream that follows OpenAI's documented wire format (the OpenAPI spec in
// shared/data/openai-openapi/openapi.yaml: CreateChatCompletionResponse,
// CreateChatCompletionStreamResponse, CreateEmbeddingResponse, ErrorResponse).
//
// Importable:   import { OpenAIMock } from './openai_mock.mjs';
//               const mock = new OpenAIMock(); await mock.start(); mock.baseUrl; await mock.stop();
// Runnable:     node tests/mock/openai_mock.mjs --port N [--host 127.0.0.1] [--api-key KEY]
//                                                [--models a,b,c] [--any-model]
//
// Tests drive it with directives written in the last user message (chat) or the input
// (embeddings), e.g. "[mock:status=429]". See README.md beside this file for the list.
//
// With `azure: true` it answers like Azure OpenAI instead (Azure OpenAI REST reference,
// data-plane inference, and its content-filtering page): deployment routes
// `/openai/deployments/{deployment}/chat/completions|embeddings?api-version=…`, the `api-key`
// header (or an Entra ID bearer token), answers that name the model behind the deployment and
// carry prompt_filter_results / content_filter_results, and Azure's error shapes.
// Every request is recorded (method, path, headers, raw body, early close) and exposed at
// GET /__mock/requests, cleared by DELETE /__mock/requests.

import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import { sleep, readBody, directiveParser, runMockCli, commaList, RecordWaiters, sampleFromSchema } from './mock_util.mjs';

export const DEFAULT_API_KEY = 'sk-mock-upstream-0123456789abcdef';
export const DEFAULT_MODELS = Object.freeze([
  'gpt-4o-mini',
  'gpt-4o-mini-2024-07-18',
  'gpt-4o',
  'gpt-4o-2024-08-06',
  'gpt-4.1-mini',
  'o3-mini',
  'text-embedding-3-small',
  'text-embedding-3-large',
  'text-embedding-ada-002',
]);
export const SYSTEM_FINGERPRINT = 'fp_7e1a9c4b2d';
/** The default reply, split the way OpenAI's tokenizer streams it (9 completion tokens). */
export const DEFAULT_REPLY_PIECES = Object.freeze(['Hello', '!', ' How', ' can', ' I', ' help', ' you', ' today', '?']);
export const DEFAULT_REPLY = DEFAULT_REPLY_PIECES.join('');
/** Azure mode: deployment name → the model behind it (what answers report). */
export const DEFAULT_AZURE_DEPLOYMENTS = Object.freeze({
  'gpt-4o': 'gpt-4o-2024-11-20',
  'gpt-4o-mini': 'gpt-4o-mini-2024-07-18',
  'text-embedding-3-small': 'text-embedding-3-small',
});
/** Azure mode: the Entra ID (azure_ad_token) bearer token accepted besides the api-key. */
export const DEFAULT_AZURE_AD_TOKEN = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.mock-entra-token';
/** Azure's api-version values: a date, optionally "-preview". */
export const AZURE_API_VERSION_RE = /^\d{4}-\d{2}-\d{2}(-preview)?$/;
const MAX_WAIT_MS = 10_000;
const ADMIN_PREFIX = '/__mock/';

// ---------------------------------------------------------------------------------------------
// Directives

const INT_DIRECTIVES = new Set([
  'status', 'retry_after', 'delay_ms', 'chunk_delay_ms', 'drop_after_chunks', 'chunks', 'prompt_tokens',
  'completion_tokens', 'cached_tokens', 'reasoning_tokens', 'created', 'split_bytes', 'piece_bytes',
]);
const FLAG_DIRECTIVES = new Set(['usage_in_last_choice_chunk', 'no_usage', 'drop', 'coalesce', 'html_error',
  'chunked_json', 'connection_close', 'content_filter']);
const STRING_DIRECTIVES = new Set(['reply', 'finish_reason', 'id', 'tool_calls', 'tool_call', 'tool_args']);

/** Parses every `[mock:name=value]` / `[mock:flag]` token of `text`. Unknown names throw. */
export const parseDirectives = directiveParser(INT_DIRECTIVES, FLAG_DIRECTIVES, STRING_DIRECTIVES);

function contentText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .filter((p) => p && typeof p === 'object' && typeof p.text === 'string')
      .map((p) => p.text)
      .join('\n');
  }
  return '';
}

function lastUserText(messages) {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m && typeof m === 'object' && m.role === 'user') return contentText(m.content);
  }
  return '';
}

// ---------------------------------------------------------------------------------------------
// Deterministic helpers

function sha256(data) {
  return crypto.createHash('sha256').update(data).digest();
}

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
function base62(bytes, length) {
  let s = '';
  for (let i = 0; s.length < length; i++) s += B62[bytes[i % bytes.length] % 62];
  return s;
}

/** Approximate token count: one token per 4 characters, at least one for a non-empty text. */
export function approxTokens(text) {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

/** Tokens of one function call (a tool call, or a legacy function_call): ⌈len(name + arguments)/4⌉. */
function callTokens(fn) {
  return approxTokens(`${fn?.name ?? ''}${fn?.arguments ?? ''}`);
}

/**
 * Prompt tokens the mock reports for `messages` when no directive overrides them: 3 + Σ(4 +
 * ⌈characters/4⌉) over messages, plus the function calls of assistant messages.
 */
export function promptTokensFor(messages) {
  let n = 3;
  for (const m of messages) {
    n += 4 + approxTokens(contentText(m?.content));
    if (Array.isArray(m?.tool_calls)) for (const c of m.tool_calls) n += callTokens(c?.function);
    if (m?.function_call) n += callTokens(m.function_call);
  }
  return n;
}

/** Prompt tokens of the function definitions (`tools`, legacy `functions`): ⌈len(JSON)/4⌉ each. */
export function toolDefinitionTokens(body) {
  const defs = [...(Array.isArray(body.tools) ? body.tools.map((t) => t.function) : []),
    ...(Array.isArray(body.functions) ? body.functions : [])];
  return defs.reduce((sum, f) => sum + approxTokens(JSON.stringify(f)), 0);
}

/** The content pieces (one per completion token) of a reply. */
export function replyPieces(d) {
  if (d.chunks !== undefined) {
    const size = d.piece_bytes ?? 0;
    return Array.from({ length: d.chunks }, (_, i) => (i === 0 ? `tok${i}` : ` tok${i}`).padEnd(size, 'x'));
  }
  if (d.reply === undefined) return [...DEFAULT_REPLY_PIECES];
  const text = d.reply;
  return text.match(/\s*\S+/g) ?? (text.length ? [text] : []);
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A unit-length float32 vector derived from (model, input). */
export function embeddingVector(model, input, dims) {
  const rnd = mulberry32(sha256(`${model}\0${JSON.stringify(input)}`).readUInt32LE(0));
  const v = new Float32Array(dims);
  let norm = 0;
  for (let i = 0; i < dims; i++) {
    v[i] = rnd() * 2 - 1;
    norm += v[i] * v[i];
  }
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < dims; i++) v[i] = v[i] / norm;
  return v;
}

function defaultDims(model) {
  if (model.includes('3-large')) return 3072;
  return 1536;
}

function obfuscation(id, index) {
  const h = sha256(`${id}#${index}`);
  return base62(h, 1 + (h[0] % 12));
}

// ---------------------------------------------------------------------------------------------
// OpenAI-shaped errors

export function errorBody(message, type, param = null, code = null) {
  return { error: { message, type, param, code } };
}

function maskKey(key) {
  if (key.length <= 8) return '*'.repeat(key.length);
  return `${key.slice(0, 3)}${'*'.repeat(Math.max(0, key.length - 7))}${key.slice(-4)}`;
}

/** The error OpenAI answers with for a status forced by `[mock:status=N]`. */
export function statusError(status, model) {
  switch (status) {
    case 400:
      return errorBody('Invalid request (forced by mock).', 'invalid_request_error', null, null);
    case 401:
      return errorBody(
        'Incorrect API key provided: sk-mock***cdef. You can find your API key at https://platform.openai.com/account/api-keys.',
        'invalid_request_error', null, 'invalid_api_key');
    case 403:
      return errorBody('You are not allowed to sample from this model', 'invalid_request_error',
        null, 'unsupported_country_region_territory');
    case 404:
      return errorBody(`The model \`${model}\` does not exist or you do not have access to it.`,
        'invalid_request_error', null, 'model_not_found');
    case 409:
      return errorBody('The server is busy processing a conflicting request.', 'invalid_request_error', null, null);
    case 422:
      return errorBody('Unprocessable entity (forced by mock).', 'invalid_request_error', null, null);
    case 429:
      return errorBody(
        `Rate limit reached for ${model} in organization org-mock on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.`,
        'requests', null, 'rate_limit_exceeded');
    case 500:
      return errorBody('The server had an error while processing your request. Sorry about that!',
        'server_error', null, null);
    case 502:
      return errorBody('Bad gateway.', 'server_error', null, null);
    case 503:
      return errorBody('The engine is currently overloaded, please try again later.',
        'server_error', null, null);
    case 504:
      return errorBody('Gateway timeout.', 'server_error', null, null);
    default:
      return errorBody(`Mock error with status ${status}.`,
        status >= 500 ? 'server_error' : 'invalid_request_error', null, null);
  }
}

class HttpError extends Error {
  constructor(status, body, headers = {}) {
    super(body.error.message);
    this.status = status;
    this.body = body;
    this.headers = headers;
  }
}

// ---------------------------------------------------------------------------------------------
// Azure OpenAI: errors, content filter results, answers

/** Azure's own error shape (routing, auth, quota): `{"error":{"code","message"}}`. */
const azureError = (status, code, message, headers = {}) => new HttpError(status, { error: { code, message } }, headers);

export const AZURE_ACCESS_DENIED = 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.';
export const AZURE_DEPLOYMENT_NOT_FOUND = 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.';

/** The error Azure answers with for a status forced by `[mock:status=N]`. */
function azureStatusError(status, version, retryAfter) {
  switch (status) {
    case 401: return azureError(401, '401', AZURE_ACCESS_DENIED);
    case 404: return azureError(404, 'DeploymentNotFound', AZURE_DEPLOYMENT_NOT_FOUND);
    case 429:
      return azureError(429, '429', `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version ${version} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${retryAfter} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
        { 'retry-after': String(retryAfter), 'retry-after-ms': String(retryAfter * 1000), 'x-ratelimit-remaining-requests': '0' });
    case 500: return azureError(500, 'InternalServerError', 'The server had an error processing your request.');
    default: return new HttpError(status, statusError(status, ''));
  }
}

const SAFE = Object.freeze({ filtered: false, severity: 'safe' });
const NOT_DETECTED = Object.freeze({ filtered: false, detected: false });
/** A completion's content_filter_results when nothing was filtered. */
export const AZURE_CONTENT_FILTER_RESULTS = Object.freeze({ hate: SAFE, protected_material_code: NOT_DETECTED,
  protected_material_text: NOT_DETECTED, self_harm: SAFE, sexual: SAFE, violence: SAFE });
/** The prompt's prompt_filter_results when nothing was filtered. */
export const AZURE_PROMPT_FILTER_RESULTS = Object.freeze([{ prompt_index: 0, content_filter_results:
  { hate: SAFE, jailbreak: NOT_DETECTED, self_harm: SAFE, sexual: SAFE, violence: SAFE } }]);

/** Azure's 400 when the prompt trips the content filter (`[mock:content_filter]`). */
function azureContentFilterError() {
  return new HttpError(400, { error: {
    message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
    type: null, param: 'prompt', code: 'content_filter', status: 400,
    innererror: { code: 'ResponsibleAIPolicyViolation', content_filter_result: {
      hate: SAFE, jailbreak: NOT_DETECTED, self_harm: SAFE, sexual: SAFE, violence: { filtered: true, severity: 'high' } } },
  } });
}

/** A whole chat completion as Azure sends it: members in alphabetical order, filter results. */
export function azureChatCompletionBody(plan, d) {
  const out = {
    choices: Array.from({ length: plan.n }, (_, index) => ({
      content_filter_results: AZURE_CONTENT_FILTER_RESULTS,
      finish_reason: plan.finishReason,
      index,
      logprobs: null,
      message: sortKeys(assistantMessage(plan, index)),
    })),
    created: plan.created,
    id: plan.id,
    model: plan.model,
    object: 'chat.completion',
    prompt_filter_results: AZURE_PROMPT_FILTER_RESULTS,
    system_fingerprint: SYSTEM_FINGERPRINT,
  };
  if (!d.no_usage) out.usage = plan.usage;
  return out;
}

/**
 * The SSE event texts Azure sends: first a chunk with empty `choices`, empty id/model/object and
 * the prompt_filter_results; then role, content and finish chunks (each choice with its
 * content_filter_results); then, with include_usage, a `choices: []` chunk with the usage.
 */
export function azureChunkTexts(plan, d, includeUsage) {
  const texts = [JSON.stringify({ choices: [], created: 0, id: '', model: '', object: '',
    prompt_filter_results: AZURE_PROMPT_FILTER_RESULTS })];
  const emit = (choices, usage) => {
    const chunk = { choices, created: plan.created, id: plan.id, model: plan.model, object: 'chat.completion.chunk',
      system_fingerprint: SYSTEM_FINGERPRINT };
    if (usage !== undefined) chunk.usage = usage;
    texts.push(JSON.stringify(chunk));
  };
  const choice = (index, delta, finish, filter) => ({ content_filter_results: filter, delta, finish_reason: finish, index, logprobs: null });
  const { protected_material_code: _c, protected_material_text: _t, ...streamed } = AZURE_CONTENT_FILTER_RESULTS;
  // Content pieces carry the filter results; the role chunk and function-call pieces carry {}.
  forEachDelta(plan, (c, delta, step) => emit([choice(c, sortKeys(delta), null,
    step > 0 && typeof delta.content === 'string' ? streamed : {})]));
  for (let c = 0; c < plan.n; c++) emit([choice(c, {}, plan.finishReason, {})]);
  if (includeUsage && !d.no_usage) emit([], plan.usage);
  return texts;
}

const invalid = (message, param = null, code = null) =>
  new HttpError(400, errorBody(message, 'invalid_request_error', param, code));

function typeName(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a decimal';
  if (typeof v === 'boolean') return 'a boolean';
  if (typeof v === 'string') return 'a string';
  return 'an object';
}

const invalidType = (param, expected, value) =>
  invalid(`Invalid type for '${param}': expected ${expected}, but got ${typeName(value)} instead.`,
    param, 'invalid_type');

// ---------------------------------------------------------------------------------------------
// Response bodies

function usageObject(d, promptTokens, completionTokens) {
  const prompt = d.prompt_tokens ?? promptTokens;
  const completion = d.completion_tokens ?? completionTokens;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: d.cached_tokens ?? 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: d.reasoning_tokens ?? 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/** `v` with the members of every object in alphabetical order (Azure's serialisation). */
function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A function definition's parameters schema, an object schema when it names no type. */
function parametersSchema(def) {
  const schema = isObj(def.parameters) ? def.parameters : {};
  return schema.type === undefined ? { type: 'object', properties: {}, ...schema } : schema;
}

/**
 * The function calls the mock answers `body` with, `{legacy, calls: [{name, arguments}]}`, or
 * null for a text answer. `tool_choice` "required", a named function or allowed_tools with mode
 * "required" force calls (after tool results too, as they force the real model); with "auto"
 * (the default) only the directives `[mock:tool_calls]`, `[mock:tool_calls=N]`,
 * `[mock:tool_call=NAME]` ask for them, and not once the last message is a tool result (the
 * directive's user turn has been answered). `parallel_tool_calls: false`, a named function and
 * the legacy `functions` give one call.
 */
function plannedCalls(body, d) {
  const legacy = !Array.isArray(body.tools) && Array.isArray(body.functions);
  const defs = legacy ? body.functions : (body.tools ?? []).map((t) => t.function);
  const choice = legacy ? body.function_call : body.tool_choice;
  if (defs.length === 0 || choice === 'none') return null;
  let allowed = defs;
  let forced;
  let required = choice === 'required';
  if (isObj(choice)) {
    if (legacy) {
      forced = choice.name;
    } else if (choice.type === 'allowed_tools') {
      const names = choice.allowed_tools.tools.map((t) => t.function.name);
      allowed = defs.filter((f) => names.includes(f.name));
      required = choice.allowed_tools.mode === 'required';
    } else {
      forced = choice.function.name;
    }
  }
  const last = body.messages.at(-1);
  const afterResults = last.role === 'tool' || last.role === 'function';
  const asked = d.tool_calls !== undefined || d.tool_call !== undefined;
  if (forced === undefined && !required && (!asked || afterResults)) return null;
  let count = 1;
  if (d.tool_calls !== undefined && d.tool_calls !== '') {
    count = Number(d.tool_calls);
    if (!Number.isInteger(count) || count < 1) throw invalid('mock directive tool_calls needs a positive integer or no value');
  }
  if (legacy || forced !== undefined || body.parallel_tool_calls === false) count = 1;
  let pick = (k) => allowed[k % allowed.length];
  const name = forced ?? (d.tool_call || undefined);
  if (name !== undefined) {
    const def = allowed.find((f) => f.name === name);
    if (!def) throw invalid(`mock directive tool_call names no function in tools: ${name}`);
    pick = () => def;
  }
  let args;
  if (d.tool_args !== undefined) {
    try {
      args = JSON.stringify(JSON.parse(d.tool_args));
    } catch {
      throw invalid('mock directive tool_args is not JSON');
    }
  }
  const calls = Array.from({ length: count }, (_, k) => {
    const def = pick(k);
    return { name: def.name, arguments: args ?? JSON.stringify(sampleFromSchema(parametersSchema(def)) ?? {}) };
  });
  return { legacy, calls };
}

/** What the answer says after tool results: `Tool result: <each result's text, joined by "; ">`. */
function toolResultReply(messages) {
  const results = [];
  for (let i = messages.length - 1; i >= 0 && ['tool', 'function'].includes(messages[i].role); i--) {
    results.unshift(contentText(messages[i].content));
  }
  return `Tool result: ${results.join('; ')}`;
}

/** The id of function call `k` of choice `c`: `call_` + 24 base62 characters. */
function callId(planId, c, k) {
  return `call_${base62(sha256(`${planId}#${c}#${k}`), 24)}`;
}

/** Everything needed to answer one chat request, computed once. */
function chatPlan(body, d, nowSeconds) {
  const messages = body.messages;
  const n = body.n ?? 1;
  const id = d.id !== undefined ? d.id :
    `chatcmpl-${base62(sha256(JSON.stringify([body.model, messages, n])), 29)}`;
  const planned = plannedCalls(body, d);
  let pieces = [];
  let calls = null;
  let completionTokens;
  if (planned) {
    // The same calls in every choice, each with its own id.
    calls = Array.from({ length: n }, (_, c) => planned.calls.map((call, k) => ({ id: callId(id, c, k), ...call })));
    completionTokens = planned.calls.reduce((sum, call) => sum + callTokens(call), 0) * n;
  } else {
    const afterResults = ['tool', 'function'].includes(messages.at(-1).role);
    pieces = afterResults && d.reply === undefined && d.chunks === undefined
      ? replyPieces({ reply: toolResultReply(messages) }) : replyPieces(d);
    completionTokens = pieces.length * n;
  }
  return {
    id,
    created: d.created ?? nowSeconds,
    model: body.model,
    n,
    pieces,
    calls,
    legacy: planned?.legacy ?? false,
    finishReason: d.finish_reason ?? (planned ? (planned.legacy ? 'function_call' : 'tool_calls') : 'stop'),
    usage: usageObject(d, promptTokensFor(messages) + toolDefinitionTokens(body), completionTokens),
  };
}

/** Choice `c`'s message in a whole answer (OpenAI's member order). */
function assistantMessage(plan, c) {
  if (plan.calls && plan.legacy) {
    const { name, arguments: args } = plan.calls[c][0];
    return { role: 'assistant', content: null, function_call: { name, arguments: args }, refusal: null, annotations: [] };
  }
  if (plan.calls) {
    return { role: 'assistant', content: null,
      tool_calls: plan.calls[c].map(({ id, name, arguments: args }) => ({ id, type: 'function', function: { name, arguments: args } })),
      refusal: null, annotations: [] };
  }
  return { role: 'assistant', content: plan.pieces.join(''), refusal: null, annotations: [] };
}

/** Function-call arguments as streamed: 4-character fragments (one per counted token). */
function argumentPieces(args) {
  const out = [];
  for (let i = 0; i < args.length; i += 4) out.push(args.slice(i, i + 4));
  return out;
}

/**
 * The deltas of choice `c` before its finish chunk. Text: the role delta (`content: ""`), then
 * one delta per piece. Tool calls: the role delta (`content: null`) carries the first call's
 * start; each call starts with `{index, id, type, function: {name, arguments: ""}}` and goes on
 * with `{index, function: {arguments: <fragment>}}`. Legacy: `function_call` likewise.
 */
function choiceDeltas(plan, c) {
  if (plan.calls && plan.legacy) {
    const { name, arguments: args } = plan.calls[c][0];
    return [{ role: 'assistant', content: null, function_call: { name, arguments: '' }, refusal: null },
      ...argumentPieces(args).map((a) => ({ function_call: { arguments: a } }))];
  }
  if (plan.calls) {
    const out = [];
    plan.calls[c].forEach(({ id, name, arguments: args }, k) => {
      const start = [{ index: k, id, type: 'function', function: { name, arguments: '' } }];
      out.push(k === 0 ? { role: 'assistant', content: null, tool_calls: start, refusal: null } : { tool_calls: start });
      for (const a of argumentPieces(args)) out.push({ tool_calls: [{ index: k, function: { arguments: a } }] });
    });
    return out;
  }
  return [{ role: 'assistant', content: '', refusal: null }, ...plan.pieces.map((content) => ({ content }))];
}

/** Calls `f(choice, delta, step)` for every delta of the plan, the choices interleaved step by step. */
function forEachDelta(plan, f) {
  const lists = Array.from({ length: plan.n }, (_, c) => choiceDeltas(plan, c));
  const steps = Math.max(...lists.map((l) => l.length));
  for (let step = 0; step < steps; step++) {
    for (let c = 0; c < plan.n; c++) if (step < lists[c].length) f(c, lists[c][step], step);
  }
}

export function chatCompletionBody(plan, d) {
  const out = {
    id: plan.id,
    object: 'chat.completion',
    created: plan.created,
    model: plan.model,
    choices: Array.from({ length: plan.n }, (_, index) => ({
      index,
      message: assistantMessage(plan, index),
      logprobs: null,
      finish_reason: plan.finishReason,
    })),
  };
  if (!d.no_usage) out.usage = plan.usage;
  out.service_tier = 'default';
  out.system_fingerprint = SYSTEM_FINGERPRINT;
  return out;
}

/**
 * The SSE events (JSON texts, without `data: `) OpenAI sends for this plan, in order, before
 * `[DONE]`. `includeUsage`: stream_options.include_usage; `includeObfuscation`: OpenAI's
 * default unless stream_options.include_obfuscation is false.
 */
export function chatChunkTexts(plan, d, includeUsage, includeObfuscation) {
  const texts = [];
  const emit = (choices, usage, last) => {
    const chunk = {
      id: plan.id,
      object: 'chat.completion.chunk',
      created: plan.created,
      model: plan.model,
      service_tier: 'default',
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices,
    };
    if (usage !== undefined) chunk.usage = usage;
    if (includeObfuscation) chunk.obfuscation = obfuscation(plan.id, texts.length);
    texts.push(JSON.stringify(chunk));
    return last;
  };
  const perChunkUsage = includeUsage && !d.no_usage && !d.usage_in_last_choice_chunk ? null : undefined;
  forEachDelta(plan, (c, delta) => emit([{ index: c, delta, logprobs: null, finish_reason: null }], perChunkUsage));
  for (let c = 0; c < plan.n; c++) {
    const lastChoice = c === plan.n - 1;
    const usage = d.usage_in_last_choice_chunk && lastChoice && !d.no_usage ? plan.usage : perChunkUsage;
    emit([{ index: c, delta: {}, logprobs: null, finish_reason: plan.finishReason }], usage);
  }
  if (includeUsage && !d.no_usage && !d.usage_in_last_choice_chunk) emit([], plan.usage);
  return texts;
}

/**
 * The SSE event texts the mock sends for chat request `body` (as the upstream receives it).
 * Deterministic when the message carries `[mock:created=N]` (or `[mock:id=…]` too).
 */
export function expectedChatStreamTexts(body) {
  const d = parseDirectives(lastUserText(body.messages));
  const plan = chatPlan(body, d, Math.floor(Date.now() / 1000));
  const so = body.stream_options ?? {};
  return chatChunkTexts(plan, d, so.include_usage === true, so.include_obfuscation !== false);
}

/** The exact bytes of the SSE stream OpenAI would send. */
export function sseBytes(texts) {
  return texts.map((t) => `data: ${t}\n\n`).join('') + 'data: [DONE]\n\n';
}

// ---------------------------------------------------------------------------------------------
// Request validation (the subset of OpenAI's checks that matter to a gateway)

function validateChat(body) {
  if (body.model === undefined) {
    throw invalid('you must provide a model parameter');
  }
  if (typeof body.model !== 'string') throw invalidType('model', 'a string', body.model);
  if (body.messages === undefined) {
    throw invalid("Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter');
  }
  if (!Array.isArray(body.messages)) throw invalidType('messages', 'an array of objects', body.messages);
  if (body.messages.length === 0) {
    throw invalid("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      'messages', 'empty_array');
  }
  body.messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      throw invalidType(`messages[${i}]`, 'an object', m);
    }
    if (typeof m.role !== 'string') {
      throw invalid(`Missing required parameter: 'messages[${i}].role'.`, `messages[${i}].role`,
        'missing_required_parameter');
    }
    validateMessage(m, `messages[${i}]`);
  });
  validateFunctions(body);
  validateTools(body);
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
    throw invalidType('stream', 'a boolean', body.stream);
  }
  if (body.n !== undefined && body.n !== null && (!Number.isInteger(body.n) || body.n < 1 || body.n > 128)) {
    throw invalid(`Invalid 'n': must be an integer between 1 and 128.`, 'n', 'invalid_value');
  }
  if (body.stream_options !== undefined && body.stream_options !== null) {
    if (body.stream !== true) {
      throw invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        'stream_options', null);
    }
    if (typeof body.stream_options !== 'object' || Array.isArray(body.stream_options)) {
      throw invalidType('stream_options', 'an object', body.stream_options);
    }
    const iu = body.stream_options.include_usage;
    if (iu !== undefined && typeof iu !== 'boolean') {
      throw invalidType('stream_options.include_usage', 'a boolean', iu);
    }
  }
  validateToolSequence(body.messages);
  validateContentPresent(body.messages);
}

const ROLES = ['system', 'assistant', 'user', 'function', 'tool', 'developer'];
const FUNCTION_NAME_MAX = 64;
const MAX_TOOLS = 128;
const given = (v) => v !== undefined && v !== null;

/** OpenAI's enumeration: 'a' and 'b' / 'a', 'b', and 'c'. */
function oneOfList(values) {
  const q = values.map((v) => `'${v}'`);
  return q.length <= 2 ? q.join(' and ') : `${q.slice(0, -1).join(', ')}, and ${q.at(-1)}`;
}

const missing = (param) => invalid(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
const invalidValue = (param, value, values) =>
  invalid(`Invalid value: '${value}'. Supported values are: ${oneOfList(values)}.`, param, 'invalid_value');
const emptyArray = (param) =>
  invalid(`Invalid '${param}': empty array. Expected an array with minimum length 1, but got an empty array instead.`,
    param, 'empty_array');

/** A function name: 1 to 64 characters of a-z, A-Z, 0-9, _ and -. */
function validateFunctionName(name, param) {
  if (name === undefined) throw missing(param);
  if (typeof name !== 'string') throw invalidType(param, 'a string', name);
  if (name.length === 0) {
    throw invalid(`Invalid '${param}': empty string. Expected a string with minimum length 1, but got an empty string instead.`,
      param, 'empty_string');
  }
  if (name.length > FUNCTION_NAME_MAX) {
    throw invalid(`Invalid '${param}': string too long. Expected a string with maximum length ${FUNCTION_NAME_MAX}, but got a string with length ${name.length} instead.`,
      param, 'string_above_max_length');
  }
  if (!/^[a-zA-Z0-9_-]+$/.test(name)) {
    throw invalid(`Invalid '${param}': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`,
      param, 'invalid_value');
  }
}

/**
 * Structured Outputs' rules for a strict function's parameters, checked where the mock can:
 * every object schema has `additionalProperties: false` and lists every property in `required`.
 */
function validateStrictSchema(schema, fnName, param, context = []) {
  if (!isObj(schema)) return;
  const where = `Invalid schema for function '${fnName}': In context=(${context.map((c) => `'${c}'`).join(', ')}${context.length === 1 ? ',' : ''}), `;
  if (schema.type === 'object' || isObj(schema.properties)) {
    if (schema.additionalProperties !== false) {
      throw invalid(`${where}'additionalProperties' is required to be supplied and to be false.`, param, 'invalid_function_parameters');
    }
    const props = isObj(schema.properties) ? Object.keys(schema.properties) : [];
    const required = Array.isArray(schema.required) ? schema.required : [];
    const absent = props.find((k) => !required.includes(k));
    if (absent !== undefined) {
      throw invalid(`${where}'required' is required to be supplied and to be an array including every key in properties. Missing '${absent}'.`,
        param, 'invalid_function_parameters');
    }
    for (const k of props) validateStrictSchema(schema.properties[k], fnName, param, [...context, 'properties', k]);
  }
  if (isObj(schema.items)) validateStrictSchema(schema.items, fnName, param, [...context, 'items']);
}

/** A FunctionObject: name, optional description, parameters (an object), strict. */
function validateFunctionDefinition(f, at) {
  if (!isObj(f)) throw invalidType(at, 'an object', f);
  validateFunctionName(f.name, `${at}.name`);
  if (given(f.description) && typeof f.description !== 'string') throw invalidType(`${at}.description`, 'a string', f.description);
  if (f.parameters !== undefined && !isObj(f.parameters)) throw invalidType(`${at}.parameters`, 'an object', f.parameters);
  if (given(f.strict) && typeof f.strict !== 'boolean') throw invalidType(`${at}.strict`, 'a boolean', f.strict);
  if (f.strict === true) validateStrictSchema(f.parameters ?? { type: 'object', properties: {} }, f.name, `${at}.parameters`);
}

/** One message's own members: role, content type, an assistant's tool_calls, a tool's tool_call_id. */
function validateMessage(m, at) {
  if (!ROLES.includes(m.role)) throw invalidValue(`${at}.role`, m.role, ROLES);
  if (given(m.content) && typeof m.content !== 'string' && !Array.isArray(m.content)) {
    throw invalidType(`${at}.content`, 'one of a string or array of objects', m.content);
  }
  if (m.role === 'assistant' && given(m.tool_calls)) {
    if (!Array.isArray(m.tool_calls)) throw invalidType(`${at}.tool_calls`, 'an array of objects', m.tool_calls);
    if (m.tool_calls.length === 0) throw emptyArray(`${at}.tool_calls`);
    m.tool_calls.forEach((c, k) => {
      const cat = `${at}.tool_calls[${k}]`;
      if (!isObj(c)) throw invalidType(cat, 'an object', c);
      if (c.id === undefined) throw missing(`${cat}.id`);
      if (typeof c.id !== 'string') throw invalidType(`${cat}.id`, 'a string', c.id);
      if (c.type === undefined) throw missing(`${cat}.type`);
      if (c.type !== 'function') throw invalidValue(`${cat}.type`, c.type, ['function', 'custom']);
      if (c.function === undefined) throw missing(`${cat}.function`);
      if (!isObj(c.function)) throw invalidType(`${cat}.function`, 'an object', c.function);
      if (c.function.name === undefined) throw missing(`${cat}.function.name`);
      if (typeof c.function.name !== 'string') throw invalidType(`${cat}.function.name`, 'a string', c.function.name);
      if (c.function.arguments === undefined) throw missing(`${cat}.function.arguments`);
      if (typeof c.function.arguments !== 'string') throw invalidType(`${cat}.function.arguments`, 'a string', c.function.arguments);
    });
  }
  if (m.role === 'assistant' && given(m.function_call)) {
    if (!isObj(m.function_call)) throw invalidType(`${at}.function_call`, 'an object', m.function_call);
    if (typeof m.function_call.name !== 'string') throw missing(`${at}.function_call.name`);
    if (typeof m.function_call.arguments !== 'string') throw missing(`${at}.function_call.arguments`);
  }
  if (m.role === 'tool') {
    if (m.tool_call_id === undefined) throw missing(`${at}.tool_call_id`);
    if (typeof m.tool_call_id !== 'string') throw invalidType(`${at}.tool_call_id`, 'a string', m.tool_call_id);
  }
  if (m.role === 'function' && m.name === undefined) throw missing(`${at}.name`);
}

/** The legacy `functions` and `function_call`. */
function validateFunctions(body) {
  const fns = body.functions;
  if (given(fns)) {
    if (!Array.isArray(fns)) throw invalidType('functions', 'an array of function definitions', fns);
    if (fns.length === 0) throw emptyArray('functions');
    fns.forEach((f, i) => validateFunctionDefinition(f, `functions[${i}]`));
  }
  const fc = body.function_call;
  if (!given(fc)) return;
  if (typeof fc === 'string') {
    if (fc !== 'none' && fc !== 'auto') throw invalidValue('function_call', fc, ['none', 'auto']);
  } else if (!isObj(fc)) {
    throw invalidType('function_call', "one of 'none' or 'auto' or object", fc);
  }
  if (!given(fns)) {
    throw invalid("Invalid value for 'function_call': 'function_call' is only allowed when 'functions' are specified.", 'function_call');
  }
  if (isObj(fc)) {
    if (fc.name === undefined) throw missing('function_call.name');
    if (!fns.some((f) => f.name === fc.name)) {
      throw invalid(`Invalid value for 'function_call': no function named '${fc.name}' was specified in the 'functions' parameter.`, 'function_call');
    }
  }
}

/** `tools` (function tools), `tool_choice` and `parallel_tool_calls`. */
function validateTools(body) {
  const tools = body.tools;
  if (given(tools)) {
    if (!Array.isArray(tools)) throw invalidType('tools', 'an array of objects', tools);
    if (tools.length === 0) throw emptyArray('tools');
    if (tools.length > MAX_TOOLS) {
      throw invalid(`Invalid 'tools': array too long. Expected an array with maximum length ${MAX_TOOLS}, but got an array with length ${tools.length} instead.`,
        'tools', 'array_above_max_length');
    }
    tools.forEach((t, i) => {
      const at = `tools[${i}]`;
      if (!isObj(t)) throw invalidType(at, 'an object', t);
      if (t.type === undefined) throw missing(`${at}.type`);
      if (t.type !== 'function' && t.type !== 'custom') throw invalidValue(`${at}.type`, t.type, ['function', 'custom']);
      if (t.type === 'custom') throw invalid(`${at}: custom tools are not supported by the mock.`, `${at}.type`);
      if (t.function === undefined) throw missing(`${at}.function`);
      validateFunctionDefinition(t.function, `${at}.function`);
    });
  }
  const declared = (name) => tools.some((t) => t.function.name === name);
  const undeclared = (name) =>
    invalid(`Invalid value for 'function_call': no function named '${name}' was specified in the 'functions' parameter.`, 'function_call');
  const tc = body.tool_choice;
  if (given(tc)) {
    if (typeof tc === 'string') {
      if (!['none', 'auto', 'required'].includes(tc)) throw invalidValue('tool_choice', tc, ['none', 'auto', 'required']);
    } else if (!isObj(tc)) {
      throw invalidType('tool_choice', "one of one of 'none', 'auto', or 'required' or object", tc);
    }
    if (!given(tools)) {
      throw invalid("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", 'tool_choice');
    }
    if (isObj(tc) && tc.type === 'allowed_tools') {
      const a = tc.allowed_tools;
      if (a === undefined) throw missing('tool_choice.allowed_tools');
      if (!isObj(a)) throw invalidType('tool_choice.allowed_tools', 'an object', a);
      if (a.mode === undefined) throw missing('tool_choice.allowed_tools.mode');
      if (a.mode !== 'auto' && a.mode !== 'required') throw invalidValue('tool_choice.allowed_tools.mode', a.mode, ['auto', 'required']);
      if (a.tools === undefined) throw missing('tool_choice.allowed_tools.tools');
      if (!Array.isArray(a.tools)) throw invalidType('tool_choice.allowed_tools.tools', 'an array of objects', a.tools);
      if (a.tools.length === 0) throw emptyArray('tool_choice.allowed_tools.tools');
      a.tools.forEach((t, k) => {
        const at = `tool_choice.allowed_tools.tools[${k}]`;
        if (!isObj(t) || t.type !== 'function') throw invalid(`${at}: only function tools are supported by the mock.`, at);
        if (!isObj(t.function) || t.function.name === undefined) throw missing(`${at}.function.name`);
        if (!declared(t.function.name)) throw undeclared(t.function.name);
      });
    } else if (isObj(tc) && tc.type === 'custom') {
      throw invalid('tool_choice: custom tools are not supported by the mock.', 'tool_choice.type');
    } else if (isObj(tc)) {
      if (tc.function === undefined) throw missing('tool_choice.function');
      if (!isObj(tc.function)) throw invalidType('tool_choice.function', 'an object', tc.function);
      if (tc.function.name === undefined) throw missing('tool_choice.function.name');
      if (typeof tc.function.name !== 'string') throw invalidType('tool_choice.function.name', 'a string', tc.function.name);
      if (!declared(tc.function.name)) throw undeclared(tc.function.name);
    }
  }
  const ptc = body.parallel_tool_calls;
  if (given(ptc)) {
    if (typeof ptc !== 'boolean') throw invalidType('parallel_tool_calls', 'a boolean', ptc);
    if (!given(tools)) {
      throw invalid("Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are specified.",
        'parallel_tool_calls');
    }
  }
}

/**
 * Tool messages answer the assistant message with `tool_calls` right before them (tool messages
 * between), one per call id; every call is answered before the next other message or the end.
 */
function validateToolSequence(messages) {
  let calls = null; // the ids of the last assistant message's tool_calls, while tool messages follow
  let pending = new Set();
  let owner = -1;
  const checkAnswered = () => {
    if (pending.size > 0) {
      throw invalid(`An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...pending].join(', ')}`,
        `messages.[${owner}].role`);
    }
  };
  messages.forEach((m, i) => {
    if (m.role === 'tool') {
      if (calls === null) {
        throw invalid("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
          `messages.[${i}].role`);
      }
      if (!calls.has(m.tool_call_id)) {
        throw invalid(`Invalid parameter: 'tool_call_id' of '${m.tool_call_id}' not found in 'tool_calls' of previous message.`,
          `messages.[${i}].tool_call_id`);
      }
      pending.delete(m.tool_call_id);
      return;
    }
    checkAnswered();
    const own = m.role === 'assistant' && Array.isArray(m.tool_calls) ? m.tool_calls.map((c) => c.id) : [];
    calls = own.length ? new Set(own) : null;
    pending = new Set(own);
    owner = i;
  });
  checkAnswered();
}

/**
 * Every message has content, checked last as OpenAI does; an assistant message may stand in
 * tool_calls, function_call, refusal or audio for it.
 */
function validateContentPresent(messages) {
  messages.forEach((m, i) => {
    if (given(m.content)) return;
    if (m.role === 'assistant' && [m.tool_calls, m.function_call, m.refusal, m.audio].some(given)) return;
    if (m.role === 'developer') {
      throw m.content === undefined ? missing(`messages[${i}].content`)
        : invalidType(`messages[${i}].content`, 'one of a string or array of objects', m.content);
    }
    throw invalid("Invalid value for 'content': expected a string, got null.", `messages.[${i}].content`);
  });
}

function embeddingInputs(input) {
  // string | string[] | int[] | int[][]
  if (typeof input === 'string') return [input];
  if (Array.isArray(input) && input.length > 0) {
    if (input.every((x) => typeof x === 'string')) return input;
    if (input.every((x) => Number.isInteger(x))) return [input];
    if (input.every((x) => Array.isArray(x) && x.length > 0 && x.every(Number.isInteger))) return input;
  }
  return null;
}

function validateEmbeddings(body) {
  if (body.model === undefined) throw invalid('you must provide a model parameter');
  if (typeof body.model !== 'string') throw invalidType('model', 'a string', body.model);
  if (body.input === undefined) {
    throw invalid("Missing required parameter: 'input'.", 'input', 'missing_required_parameter');
  }
  const inputs = embeddingInputs(body.input);
  if (!inputs || inputs.some((x) => x === '')) {
    throw invalid("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.");
  }
  const ef = body.encoding_format;
  if (ef !== undefined && ef !== 'float' && ef !== 'base64') {
    throw invalid(`Invalid value for 'encoding_format': expected one of 'float' or 'base64', but got '${ef}' instead.`,
      'encoding_format', 'invalid_value');
  }
  if (body.dimensions !== undefined && (!Number.isInteger(body.dimensions) || body.dimensions < 1)) {
    throw invalid("Invalid 'dimensions': must be a positive integer.", 'dimensions', 'invalid_value');
  }
  return inputs;
}

// ---------------------------------------------------------------------------------------------
// The server

export class OpenAIMock {
  /**
   * @param {object} [options]
   * @param {string} [options.apiKey]  the provider key the gateway must send as Bearer token
   * @param {string[]} [options.models] known model ids (others answer 404 model_not_found)
   * @param {boolean} [options.anyModel] accept every model id
   * @param {string} [options.host]
   * @param {number} [options.keepAliveTimeoutMs] idle keep-alive connections are closed after it
   * @param {{key: string|Buffer, cert: string|Buffer}} [options.tls] PEM key and certificate
   *   (chain): listen with TLS (node:https) instead of plain HTTP; `url` is then https://
   * @param {boolean} [options.azure] answer like Azure OpenAI (deployment routes, api-version,
   *   `api-key`, filter results); `baseUrl` is then the endpoint (no /v1)
   * @param {Object<string, string>} [options.deployments] Azure: deployment → underlying model
   * @param {string} [options.adToken] Azure: the Entra ID bearer token accepted besides the key
   */
  constructor(options = {}) {
    this.apiKey = options.apiKey ?? DEFAULT_API_KEY;
    this.azure = options.azure ?? false;
    this.deployments = { ...(options.deployments ?? DEFAULT_AZURE_DEPLOYMENTS) };
    this.adToken = options.adToken ?? DEFAULT_AZURE_AD_TOKEN;
    this.models = [...(options.models ?? DEFAULT_MODELS)];
    this.anyModel = options.anyModel ?? false;
    this.host = options.host ?? '127.0.0.1';
    this.requests = [];
    this.seq = 0;
    this.waiters = new RecordWaiters(() => this.recorded(), () => `; recorded: ${JSON.stringify(this.recorded()
      .map((r) => ({ path: r.path, completed: r.completed, closed_early: r.closed_early })))}`);
    this.tls = Boolean(options.tls);
    // TLS only: the SNI server name of every completed handshake (false: none sent), and the
    // errors of failed handshakes (e.g. the client rejecting the certificate).
    this.tlsServernames = [];
    this.tlsErrors = [];
    const serverOptions = { keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000, requestTimeout: 0 };
    const handler = (req, res) => this.#handle(req, res);
    this.server = this.tls
      ? https.createServer({ ...serverOptions, key: options.tls.key, cert: options.tls.cert }, handler)
      : http.createServer(serverOptions, handler);
    this.server.keepAliveTimeout = serverOptions.keepAliveTimeout;
    this.sockets = new Set();
    this.connectionSeq = 0;
    this.server.on('connection', (s) => {
      // With TLS, requests arrive on the TLS socket: it is numbered in 'secureConnection'.
      if (!this.tls) s.mockConnectionId = ++this.connectionSeq;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    if (this.tls) {
      this.server.on('secureConnection', (s) => {
        s.mockConnectionId = ++this.connectionSeq;
        this.tlsServernames.push(s.servername ?? false);
        this.#notify();
      });
      this.server.on('tlsClientError', (err) => {
        this.tlsErrors.push(err.code ?? err.message);
        this.#notify();
      });
    }
  }

  /** Listens (port 0: a free port) and resolves with the port. */
  async start(port = 0) {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, this.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.port;
  }

  get port() {
    return this.server.address().port;
  }

  get url() {
    return `${this.tls ? 'https' : 'http'}://${this.host}:${this.port}`;
  }

  /** The `base_url` a client or gateway configures (…/v1). */
  get baseUrl() {
    return this.azure ? this.url : `${this.url}/v1`;
  }

  async stop() {
    this.waiters.rejectAll();
    await new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }

  clearRequests() {
    this.requests = [];
    this.tlsServernames = [];
    this.tlsErrors = [];
  }

  /** The recorded requests as plain JSON-able objects. */
  recorded() {
    return this.requests.map((r) => ({ ...r.public }));
  }

  /** Resolves once `predicate(recorded())` is true; rejects after `timeoutMs`. */
  waitFor(predicate, timeoutMs = 5_000, what = 'condition') {
    return this.waiters.wait(predicate, timeoutMs, what);
  }

  /** How many distinct client connections the recorded requests came on. */
  connectionsSeen() {
    return new Set(this.requests.map((r) => r.public.connection_id)).size;
  }

  waitForRequests(count, timeoutMs = 5_000) {
    return this.waitFor((rs) => rs.length >= count, timeoutMs, `${count} request(s)`);
  }

  #notify() {
    this.waiters.notify();
  }

  async #handle(req, res) {
    const url = new URL(req.url, 'http://mock');
    if (url.pathname.startsWith(ADMIN_PREFIX)) {
      await this.#admin(req, res, url);
      return;
    }
    const record = {
      seq: ++this.seq,
      method: req.method,
      path: req.url,
      http_version: req.httpVersion,
      connection_id: req.socket.mockConnectionId,
      headers: { ...req.headers },
      raw_headers: [...req.rawHeaders],
      body_base64: '',
      body_text: '',
      received_at_ms: Date.now(),
      status: null,
      response_request_id: null,
      events_sent: 0,
      completed: false,
      closed_early: false,
      closed_at_ms: null,
    };
    if (this.tls) record.tls_servername = req.socket.servername ?? false; // SNI (false: none)
    const entry = { public: record, body: Buffer.alloc(0) };
    this.requests.push(entry);
    res.on('close', () => {
      record.closed_at_ms = Date.now();
      if (!res.writableFinished) record.closed_early = true;
      this.#notify();
    });
    res.on('finish', () => {
      record.completed = true;
      this.#notify();
    });

    let body;
    try {
      body = await readBody(req);
    } catch {
      record.closed_early = true;
      this.#notify();
      return;
    }
    entry.body = body;
    record.body_base64 = body.toString('base64');
    record.body_text = body.toString('utf8');
    this.#notify();

    try {
      await this.#route(req, res, url, body, record);
    } catch (err) {
      if (err instanceof HttpError) {
        await this.#sendJson(res, record, err.status, err.body, {}, err.headers);
      } else if (!res.headersSent) {
        await this.#sendJson(res, record, 500, errorBody(`mock failure: ${err.message}`, 'server_error'));
      } else {
        res.destroy();
      }
    }
  }

  async #admin(req, res, url) {
    if (url.pathname === '/__mock/requests' && req.method === 'GET') {
      const min = Number(url.searchParams.get('min') ?? 0);
      const timeout = Math.min(Number(url.searchParams.get('timeout_ms') ?? 0), MAX_WAIT_MS);
      if (min > 0) {
        try {
          await this.waitForRequests(min, timeout);
        } catch {
          // answer with what there is; the caller checks the count
        }
      }
      const text = JSON.stringify(this.recorded());
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    } else if (url.pathname === '/__mock/requests' && req.method === 'DELETE') {
      this.clearRequests();
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(errorBody(`no mock admin route ${req.method} ${url.pathname}`, 'invalid_request_error')));
    }
  }

  #headers(record, extra = {}) {
    if (this.azure) {
      record.response_request_id = crypto.randomUUID();
      return {
        'apim-request-id': record.response_request_id,
        'x-request-id': record.response_request_id,
        'x-ms-region': 'East US',
        'x-ratelimit-remaining-requests': '249',
        'x-ratelimit-remaining-tokens': '249000',
        'azureml-model-session': 'v20241120-1-mock',
        ...extra,
      };
    }
    record.response_request_id = `req_${crypto.randomBytes(16).toString('hex')}`;
    return {
      'openai-organization': 'org-mock',
      'openai-processing-ms': '7',
      'openai-version': '2020-10-01',
      'x-request-id': record.response_request_id,
      'x-ratelimit-limit-requests': '10000',
      'x-ratelimit-remaining-requests': '9999',
      'x-ratelimit-reset-requests': '6ms',
      ...extra,
    };
  }

  async #sendJson(res, record, status, obj, d = {}, headers = {}) {
    if (res.destroyed) return;
    // OpenAI pretty-prints; Azure sends compact JSON.
    const text = this.azure ? JSON.stringify(obj) : JSON.stringify(obj, null, 2) + '\n';
    record.status = status;
    const extra = { 'content-type': 'application/json', ...headers };
    if (d.connection_close) extra.connection = 'close';
    if (!d.chunked_json) {
      extra['content-length'] = String(Buffer.byteLength(text));
      res.writeHead(status, this.#headers(record, extra));
      await new Promise((resolve) => res.end(text, resolve));
      return;
    }
    // Transfer-Encoding: chunked, the body in three pieces.
    res.writeHead(status, this.#headers(record, extra));
    const buf = Buffer.from(text);
    const cut = [0, Math.floor(buf.length / 3), Math.floor((2 * buf.length) / 3), buf.length];
    for (let i = 0; i < 3; i++) {
      if (res.destroyed) return;
      await new Promise((resolve) => res.write(buf.subarray(cut[i], cut[i + 1]), resolve));
      await sleep(2);
    }
    await new Promise((resolve) => res.end(resolve));
  }

  #checkAuth(req) {
    const auth = req.headers.authorization;
    if (auth === undefined) {
      throw new HttpError(401, errorBody(
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
        'invalid_request_error', null, null));
    }
    const m = /^Bearer (.+)$/.exec(auth);
    if (!m || m[1] !== this.apiKey) {
      const shown = m ? maskKey(m[1]) : '';
      throw new HttpError(401, errorBody(
        `Incorrect API key provided: ${shown}. You can find your API key at https://platform.openai.com/account/api-keys.`,
        'invalid_request_error', null, 'invalid_api_key'));
    }
  }

  #checkModel(model) {
    if (!this.anyModel && !this.models.includes(model)) {
      throw new HttpError(404, errorBody(`The model \`${model}\` does not exist or you do not have access to it.`,
        'invalid_request_error', null, 'model_not_found'));
    }
  }

  #checkAzureAuth(req) {
    const key = req.headers['api-key'];
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (key !== undefined ? key !== this.apiKey : bearer !== this.adToken) {
      throw azureError(401, '401', AZURE_ACCESS_DENIED);
    }
  }

  /** Azure OpenAI's data plane: deployment routes, api-version, api-key, deployment → model. */
  async #azureRoute(req, res, url, raw, record) {
    const m = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/.exec(url.pathname);
    const version = url.searchParams.get('api-version');
    // Azure answers a path it does not serve, and one without api-version, "Resource not found".
    if (req.method !== 'POST' || !m || version === null) throw azureError(404, '404', 'Resource not found');
    if (!AZURE_API_VERSION_RE.test(version)) throw azureError(400, 'BadRequest', 'API version not supported');
    this.#checkAzureAuth(req);
    const model = Object.hasOwn(this.deployments, decodeURIComponent(m[1])) ? this.deployments[decodeURIComponent(m[1])] : undefined;
    if (model === undefined) throw azureError(404, 'DeploymentNotFound', AZURE_DEPLOYMENT_NOT_FOUND);
    const body = this.#parseBody(raw);
    // The deployment decides the model: a `model` in the body is ignored, and answers name
    // the model behind the deployment.
    const azure = { version, model };
    if (m[2] === 'chat/completions') {
      await this.#chat(req, res, { ...body, model }, record, azure);
    } else {
      await this.#embeddings(req, res, { ...body, model }, record, azure);
    }
  }

  #parseBody(raw) {
    let body;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw invalid("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)");
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw invalid(`Invalid type for 'body': expected an object, but got ${typeName(body)} instead.`);
    }
    return body;
  }

  async #route(req, res, url, raw, record) {
    if (this.azure) {
      await this.#azureRoute(req, res, url, raw, record);
      return;
    }
    const route = `${req.method} ${url.pathname}`;
    const known = ['POST /v1/chat/completions', 'POST /v1/embeddings', 'GET /v1/models'];
    if (!known.includes(route)) {
      throw new HttpError(404, errorBody(`Invalid URL (${req.method} ${url.pathname})`, 'invalid_request_error'));
    }
    this.#checkAuth(req);
    if (route === 'GET /v1/models') {
      await this.#sendJson(res, record, 200, {
        object: 'list',
        data: this.models.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'system' })),
      });
      return;
    }
    const body = this.#parseBody(raw);
    if (route === 'POST /v1/chat/completions') {
      await this.#chat(req, res, body, record);
    } else {
      await this.#embeddings(req, res, body, record);
    }
  }

  /** `azure`: {version, model} in Azure mode, else undefined. */
  async #preamble(res, d, model, azure) {
    if (d.delay_ms) await sleep(d.delay_ms);
    if (res.destroyed) return false;
    if (d.drop) {
      res.socket?.destroy();
      return false;
    }
    if (d.status !== undefined && d.status !== 200) {
      if (d.html_error) {
        // What a fronting proxy (e.g. a CDN) answers: an HTML page, not OpenAI's JSON.
        const html = `<html>\r\n<head><title>${d.status} Bad Gateway</title></head>\r\n<body>\r\n<center><h1>${d.status} Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n`;
        res.writeHead(d.status, { 'content-type': 'text/html', 'content-length': String(Buffer.byteLength(html)) });
        await new Promise((resolve) => res.end(html, resolve));
        return false;
      }
      if (azure) throw azureStatusError(d.status, azure.version, d.retry_after ?? 6);
      const headers = d.retry_after !== undefined ? { 'retry-after': String(d.retry_after) } : {};
      throw new HttpError(d.status, statusError(d.status, model), headers);
    }
    if (azure && d.content_filter) throw azureContentFilterError();
    return true;
  }

  async #chat(req, res, body, record, azure) {
    validateChat(body);
    let d;
    try {
      d = parseDirectives(lastUserText(body.messages));
    } catch (e) {
      throw invalid(e.message);
    }
    if (!azure) this.#checkModel(body.model);
    if (!(await this.#preamble(res, d, body.model, azure))) return;
    const plan = chatPlan(body, d, Math.floor(Date.now() / 1000));
    if (body.stream !== true) {
      await this.#sendJson(res, record, 200, azure ? azureChatCompletionBody(plan, d) : chatCompletionBody(plan, d), d);
      return;
    }
    const so = body.stream_options ?? {};
    const texts = azure ? azureChunkTexts(plan, d, so.include_usage === true)
      : chatChunkTexts(plan, d, so.include_usage === true, so.include_obfuscation !== false);
    record.status = 200;
    res.writeHead(200, this.#headers(record, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      ...(d.connection_close ? { connection: 'close' } : {}),
    }));
    res.flushHeaders();
    let events = [...texts.map((t) => `data: ${t}\n\n`), 'data: [DONE]\n\n'];
    if (d.coalesce) {
      events = [events.join('')]; // the whole stream in one write
    } else if (d.split_bytes) {
      const all = Buffer.from(events.join(''));
      events = [];
      for (let i = 0; i < all.length; i += d.split_bytes) events.push(all.subarray(i, i + d.split_bytes));
    }
    const pace = d.chunk_delay_ms ?? (d.split_bytes ? 1 : 0);
    for (let i = 0; i < events.length; i++) {
      if (d.drop_after_chunks !== undefined && i >= d.drop_after_chunks) {
        res.socket?.destroy();
        return;
      }
      if (i > 0 && pace) await sleep(pace);
      if (res.destroyed) return;
      const ok = await new Promise((resolve) => res.write(events[i], (err) => resolve(!err)));
      if (!ok) return;
      record.events_sent = i + 1;
    }
    await new Promise((resolve) => res.end(resolve));
  }

  async #embeddings(req, res, body, record, azure) {
    const inputs = validateEmbeddings(body);
    let d = {};
    try {
      for (const x of inputs) if (typeof x === 'string') Object.assign(d, parseDirectives(x));
    } catch (e) {
      throw invalid(e.message);
    }
    if (!azure) this.#checkModel(body.model);
    if (!(await this.#preamble(res, d, body.model, azure))) return;
    const dims = body.dimensions ?? defaultDims(body.model);
    const base64 = body.encoding_format === 'base64';
    const data = inputs.map((input, index) => {
      const v = embeddingVector(body.model, input, dims);
      return {
        object: 'embedding',
        index,
        embedding: base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v),
      };
    });
    const promptTokens = d.prompt_tokens ??
      inputs.reduce((s, x) => s + (typeof x === 'string' ? approxTokens(x) : x.length), 0);
    const usage = { prompt_tokens: promptTokens, total_tokens: promptTokens };
    // Azure: members in alphabetical order, the model behind the deployment.
    const out = azure
      ? { data: data.map(({ object, index, embedding }) => ({ embedding, index, object })), model: body.model, object: 'list' }
      : { object: 'list', data, model: body.model };
    if (!d.no_usage) out.usage = usage;
    await this.#sendJson(res, record, 200, out, d);
  }
}


// ---------------------------------------------------------------------------------------------
// Command line

runMockCli(import.meta.url, {
  name: 'openai_mock',
  usage: '--port N [--host H] [--api-key K] [--models a,b] [--any-model] [--azure]',
  options: { '--api-key': ['apiKey', String], '--models': ['models', commaList], '--any-model': ['anyModel', true],
    '--azure': ['azure', true] },
  create: (opts) => new OpenAIMock(opts),
  describe: (mock) => ({ base_url: mock.baseUrl, api_key: mock.apiKey }),
});
