// A mock Google Gemini API upstream (the Gemini Developer API, generativelanguage.googleapis.com,
// v1beta): generateContent, streamGenerateContent?alt=sse, embedContent, batchEmbedContents
// and models.list / models.get, following Google's documented wire format (API reference
// "Generating content", "Embeddings", "Models", the streaming guide and the troubleshooting
// page's error table — see README.md beside this file).
//
// Importable:   import { GeminiMock } from './gemini_mock.mjs';
//               const mock = new GeminiMock(); await mock.start(); mock.url; await mock.stop();
// Runnable:     node tests/mock/gemini_mock.mjs --port N [--host H] [--api-key K] [--models a,b] [--any-model]
//
// Tests script it with directives in the text parts of the last user turn ("[mock:status=429]",
// "[mock:function_call]", "[mock:cut_after=2]"); generationConfig (maxOutputTokens,
// stopSequences, candidateCount, thinkingConfig, responseMimeType) and toolConfig act as on
// the real API. Every request is recorded without the API key.

import http from 'node:http';
import crypto from 'node:crypto';

import { approxTokens, replyPieces, embeddingVector } from './openai_mock.mjs';
import { sampleFromSchema } from './anthropic_mock.mjs';
import { sleep, readBody, directiveParser, runMockCli, commaList, RecordWaiters, createMockServer, listenServer, closeServer,
  serveRecordAdmin } from './mock_util.mjs';

export const DEFAULT_API_KEY = 'AIzaMockGeminiUpstream0123456789abcdefg';
export const API_VERSION = 'v1beta';
/** Known models: Gemini's Model resource fields the mock answers with. */
export const DEFAULT_MODELS = Object.freeze([
  { id: 'gemini-2.5-flash', displayName: 'Gemini 2.5 Flash', inputTokenLimit: 1048576, outputTokenLimit: 65536, thinking: true, methods: ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'] },
  { id: 'gemini-2.5-pro', displayName: 'Gemini 2.5 Pro', inputTokenLimit: 1048576, outputTokenLimit: 65536, thinking: true, methods: ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'] },
  { id: 'gemini-2.5-flash-lite', displayName: 'Gemini 2.5 Flash-Lite', inputTokenLimit: 1048576, outputTokenLimit: 65536, thinking: true, methods: ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'] },
  { id: 'gemini-2.0-flash', displayName: 'Gemini 2.0 Flash', inputTokenLimit: 1048576, outputTokenLimit: 8192, thinking: false, methods: ['generateContent', 'countTokens', 'createCachedContent', 'batchGenerateContent'] },
  { id: 'gemini-embedding-001', displayName: 'Gemini Embedding 001', inputTokenLimit: 2048, outputTokenLimit: 1, dims: 3072, methods: ['embedContent', 'countTextTokens', 'countTokens'] },
  { id: 'text-embedding-004', displayName: 'Text Embedding 004', inputTokenLimit: 2048, outputTokenLimit: 1, dims: 768, methods: ['embedContent'] },
]);
/** Tokens of one image / file part (Gemini counts a ≤384 px image as 258 tokens). */
export const MEDIA_TOKENS = 258;
export const THINKING_TEXT = 'The user wrote a message. A short, friendly answer fits.';

// ---------------------------------------------------------------------------------------------
// Directives

const INT_DIRECTIVES = new Set(['status', 'retry_after', 'delay_ms', 'chunk_delay_ms', 'chunks', 'piece_bytes',
  'cut_after', 'error_after', 'error_status', 'prompt_tokens', 'candidates_tokens', 'cached_tokens', 'thoughts_tokens']);
const FLAG_DIRECTIVES = new Set(['drop']);
const STRING_DIRECTIVES = new Set(['reply', 'finish_reason', 'function_call', 'function_args', 'response_id']);

/** Parses every `[mock:name=value]` / `[mock:flag]` of `text`. Unknown names throw. */
export const parseDirectives = directiveParser(INT_DIRECTIVES, FLAG_DIRECTIVES, STRING_DIRECTIVES);

/** The text of `parts` (thought parts left out): where directives are read. */
export const partsText = (parts) => (Array.isArray(parts) ? parts.filter((p) => typeof p?.text === 'string' && !p.thought).map((p) => p.text).join('\n') : '');

// ---------------------------------------------------------------------------------------------
// Errors in Google's shape: {"error": {"code", "message", "status", ["details"]}}

export const STATUS_NAMES = {
  400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND',
  409: 'ABORTED', 429: 'RESOURCE_EXHAUSTED', 499: 'CANCELLED', 500: 'INTERNAL', 501: 'NOT_IMPLEMENTED',
  503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED',
};
const FORCED_MESSAGES = {
  400: 'Request contains an invalid argument.',
  401: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
  403: 'The caller does not have permission',
  429: 'You exceeded your current quota, please check your plan and billing details.',
  500: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  503: 'The model is overloaded. Please try again later.',
  504: 'Deadline expired before operation could complete.',
};
const KEY_INVALID = 'API key not valid. Please pass a valid API key.';
const KEY_MISSING = "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.";

export class GoogleError extends Error {
  constructor(code, message, details = undefined) {
    super(message);
    this.code = code;
    this.statusName = STATUS_NAMES[code] ?? (code >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT');
    this.details = details;
  }

  body() {
    return { error: { code: this.code, message: this.message, status: this.statusName, ...(this.details ? { details: this.details } : {}) } };
  }
}
const invalid = (message) => new GoogleError(400, message);
const errorInfo = (reason) => ({ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain: 'googleapis.com',
  metadata: { service: 'generativelanguage.googleapis.com' } });

/** The error `[mock:status=N]` answers with. */
export function forcedError(status, model, retryAfter = 15) {
  if (status === 404) return new GoogleError(404, notFoundMessage(model, 'generateContent'));
  const details = status === 429 ? [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${retryAfter}s` }] : undefined;
  return new GoogleError(status, FORCED_MESSAGES[status] ?? `Mock error with status ${status}.`, details);
}

const notFoundMessage = (model, method) => `models/${model} is not found for API version ${API_VERSION}, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`;

// ---------------------------------------------------------------------------------------------
// Request validation (field paths as Google writes them)

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const BASE64_RE = /^[A-Za-z0-9+/_-]*={0,2}$/;
const REQUEST_FIELDS = new Set(['contents', 'systemInstruction', 'system_instruction', 'generationConfig', 'generation_config',
  'tools', 'toolConfig', 'tool_config', 'safetySettings', 'safety_settings', 'cachedContent', 'cached_content', 'model', 'labels']);
const GEN_FIELDS = new Set(['maxOutputTokens', 'temperature', 'topP', 'topK', 'stopSequences', 'candidateCount',
  'responseMimeType', 'responseSchema', 'responseJsonSchema', 'thinkingConfig', 'presencePenalty', 'frequencyPenalty',
  'seed', 'responseLogprobs', 'logprobs', 'responseModalities', 'mediaResolution', 'speechConfig']);
const PART_DATA = ['text', 'inlineData', 'fileData', 'functionCall', 'functionResponse', 'executableCode', 'codeExecutionResult'];
const PART_FIELDS = new Set([...PART_DATA, 'thought', 'thoughtSignature', 'videoMetadata', 'partMetadata']);
const unknownField = (name, where) => invalid(`Invalid JSON payload received. Unknown name "${name}" at '${where}': Cannot find field.`);

/** Accepts snake_case aliases the way Google's JSON parser does (proto field names). */
const pick = (o, camel) => o[camel] ?? o[camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)];

function checkPart(p, at, role) {
  if (!isObj(p)) throw invalid(`* ${at}: Invalid value (expected an object)`);
  for (const k of Object.keys(p)) if (!PART_FIELDS.has(k)) throw unknownField(k, at);
  const data = PART_DATA.filter((k) => p[k] !== undefined);
  if (data.length === 0) throw invalid(`* ${at}.data: required oneof field 'data' must have one initialized field`);
  if (data.length > 1) throw invalid(`* ${at}: oneof field 'data' is already set. Cannot set '${data[1]}'`);
  if (p.text !== undefined && typeof p.text !== 'string') throw invalid(`* ${at}.text: Invalid value (expected a string)`);
  if (p.thought !== undefined && typeof p.thought !== 'boolean') throw invalid(`* ${at}.thought: Invalid value (expected a boolean)`);
  if (p.inlineData !== undefined) {
    const d = p.inlineData;
    if (!isObj(d) || typeof d.mimeType !== 'string' || !d.mimeType) throw invalid(`* ${at}.inline_data.mime_type: mime_type must be set`);
    if (typeof d.data !== 'string' || !BASE64_RE.test(d.data)) throw invalid(`Invalid value at '${at}.inline_data.data' (TYPE_BYTES), Base64 decoding failed`);
  }
  if (p.fileData !== undefined && (!isObj(p.fileData) || typeof p.fileData.fileUri !== 'string')) {
    throw invalid(`* ${at}.file_data.file_uri: file_uri must be set`);
  }
  if (p.functionCall !== undefined) {
    if (role === 'user') throw invalid(`* ${at}: a function_call part must be in a turn of role model`);
    if (!isObj(p.functionCall) || typeof p.functionCall.name !== 'string') throw invalid(`* ${at}.function_call.name: Name cannot be empty.`);
    if (p.functionCall.args !== undefined && !isObj(p.functionCall.args)) throw invalid(`* ${at}.function_call.args: Invalid value (expected an object)`);
  }
  if (p.functionResponse !== undefined) {
    if (!isObj(p.functionResponse) || typeof p.functionResponse.name !== 'string') throw invalid(`* ${at}.function_response.name: Name cannot be empty.`);
    if (!isObj(p.functionResponse.response)) throw invalid(`* ${at}.function_response.response: Invalid value (expected an object)`);
  }
}

function checkContent(c, at, { requireRole }) {
  if (!isObj(c)) throw invalid(`* ${at}: Invalid value (expected an object)`);
  for (const k of Object.keys(c)) if (k !== 'role' && k !== 'parts') throw unknownField(k, at);
  if (c.role !== undefined && (requireRole || c.role !== '') && c.role !== 'user' && c.role !== 'model') {
    throw invalid('Please use a valid role: user, model.');
  }
  if (!Array.isArray(c.parts) || c.parts.length === 0) throw invalid(`* ${at}.parts: contents.parts must not be empty.`);
  c.parts.forEach((p, i) => checkPart(p, `${at}.parts[${i}]`, c.role));
}

function checkGenerationConfig(g, model) {
  if (g === undefined) return;
  const at = 'GenerateContentRequest.generation_config';
  if (!isObj(g)) throw invalid(`Invalid value at 'generation_config' (type.googleapis.com/google.ai.generativelanguage.${API_VERSION}.GenerationConfig)`);
  for (const k of Object.keys(g)) if (!GEN_FIELDS.has(k)) throw unknownField(k, 'generation_config');
  const num = (k, lo, hi) => {
    if (g[k] !== undefined && (typeof g[k] !== 'number' || g[k] < lo || g[k] > hi)) throw invalid(`* ${at}.${k}: ${k} must be in the range [${lo}, ${hi}]`);
  };
  num('temperature', 0, 2);
  num('topP', 0, 1);
  if (g.topK !== undefined && (!Number.isInteger(g.topK) || g.topK < 1)) throw invalid(`* ${at}.top_k: top_k must be a positive integer`);
  if (g.candidateCount !== undefined && (!Number.isInteger(g.candidateCount) || g.candidateCount < 1 || g.candidateCount > 8)) {
    throw invalid(`* ${at}.candidate_count: candidate_count must be in the range [1, 8]`);
  }
  if (g.maxOutputTokens !== undefined) {
    if (!Number.isInteger(g.maxOutputTokens) || g.maxOutputTokens < 1) throw invalid(`* ${at}.max_output_tokens: max_output_tokens must be positive`);
    if (model && g.maxOutputTokens > model.outputTokenLimit + 1) {
      throw invalid(`The maximum number of tokens allowed is ${model.outputTokenLimit + 1} (exclusive). Got ${g.maxOutputTokens}.`);
    }
  }
  if (g.stopSequences !== undefined) {
    if (!Array.isArray(g.stopSequences) || g.stopSequences.some((s) => typeof s !== 'string')) throw invalid(`* ${at}.stop_sequences: Invalid value (expected a list of strings)`);
    if (g.stopSequences.length > 5) throw invalid(`* ${at}.stop_sequences: at most 5 stop sequences are allowed`);
  }
  if (g.responseMimeType !== undefined && !['text/plain', 'application/json', 'text/x.enum'].includes(g.responseMimeType)) {
    throw invalid(`* ${at}.response_mime_type: allowed mimetypes are \`text/plain\`, \`application/json\`, \`text/x.enum\`.`);
  }
  if ((g.responseSchema !== undefined || g.responseJsonSchema !== undefined) && g.responseMimeType !== 'application/json' && g.responseMimeType !== 'text/x.enum') {
    throw invalid(`* ${at}.response_schema: response_mime_type must be \`application/json\` or \`text/x.enum\` when response_schema is set.`);
  }
  if (g.responseSchema !== undefined && g.responseJsonSchema !== undefined) throw invalid(`* ${at}: response_schema and response_json_schema cannot both be set.`);
  const t = g.thinkingConfig;
  if (t !== undefined) {
    if (!isObj(t)) throw invalid(`* ${at}.thinking_config: Invalid value (expected an object)`);
    for (const k of Object.keys(t)) if (!['thinkingBudget', 'includeThoughts', 'thinkingLevel'].includes(k)) throw unknownField(k, 'generation_config.thinking_config');
    if (t.includeThoughts !== undefined && typeof t.includeThoughts !== 'boolean') throw invalid(`* ${at}.thinking_config.include_thoughts: Invalid value (expected a boolean)`);
    if (t.thinkingBudget !== undefined) {
      if (!Number.isInteger(t.thinkingBudget) || t.thinkingBudget < -1 || t.thinkingBudget > 32768) {
        throw invalid(`* ${at}.thinking_config.thinking_budget: thinking_budget must be -1 (dynamic) or in the range [0, 32768]`);
      }
      if (model && !model.thinking && t.thinkingBudget !== 0) throw invalid('Thinking is not supported for this model.');
    }
  }
}

const NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/;

function checkTools(body) {
  const names = [];
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) throw invalid("Invalid value at 'tools' (expected a list)");
    body.tools.forEach((t, i) => {
      if (!isObj(t)) throw invalid(`* GenerateContentRequest.tools[${i}]: Invalid value (expected an object)`);
      for (const k of Object.keys(t)) {
        if (!['functionDeclarations', 'googleSearch', 'googleSearchRetrieval', 'codeExecution', 'urlContext'].includes(k)) throw unknownField(k, `tools[${i}]`);
      }
      (t.functionDeclarations ?? []).forEach((f, j) => {
        const at = `GenerateContentRequest.tools[${i}].function_declarations[${j}]`;
        if (!isObj(f) || typeof f.name !== 'string' || !NAME_RE.test(f.name)) {
          throw invalid(`* ${at}.name: Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.`);
        }
        if (f.parameters !== undefined && f.parametersJsonSchema !== undefined) throw invalid(`* ${at}: parameters and parameters_json_schema cannot both be set.`);
        if (names.some((d) => d.name === f.name)) throw invalid(`* ${at}.name: Duplicate function declaration name: ${f.name}`);
        names.push(f);
      });
    });
  }
  const fc = pick(body, 'toolConfig')?.functionCallingConfig;
  if (fc !== undefined) {
    if (!isObj(fc)) throw invalid("Invalid value at 'tool_config.function_calling_config'");
    if (fc.mode !== undefined && !['AUTO', 'ANY', 'NONE', 'VALIDATED', 'MODE_UNSPECIFIED'].includes(fc.mode)) {
      throw invalid(`Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.${API_VERSION}.FunctionCallingConfig.Mode), "${fc.mode}"`);
    }
    if (fc.allowedFunctionNames !== undefined) {
      if (fc.mode !== 'ANY' && fc.mode !== 'VALIDATED') throw invalid('* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: allowed_function_names can only be set when mode is ANY.');
      for (const n of fc.allowedFunctionNames) {
        if (!names.some((d) => d.name === n)) throw invalid(`* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: function ${n} is not declared in tools.`);
      }
    }
    if (fc.mode === 'ANY' && names.length === 0) throw invalid('* GenerateContentRequest.tool_config.function_calling_config.mode: function calling mode ANY requires function declarations in tools.');
  }
  return names;
}

/** Validates a generateContent body; returns the declared functions. */
export function validateGenerateBody(body, model) {
  for (const k of Object.keys(body)) if (!REQUEST_FIELDS.has(k)) throw unknownField(k, '');
  if (body.contents === undefined || (Array.isArray(body.contents) && body.contents.length === 0)) {
    throw invalid('* GenerateContentRequest.contents: contents is not specified');
  }
  if (!Array.isArray(body.contents)) throw invalid("Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), expected a list");
  body.contents.forEach((c, i) => checkContent(c, `GenerateContentRequest.contents[${i}]`, { requireRole: body.contents.length > 1 }));
  const sys = pick(body, 'systemInstruction');
  if (sys !== undefined) {
    if (!isObj(sys)) throw invalid("Invalid value at 'system_instruction' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content)");
    checkContent({ parts: sys.parts }, 'GenerateContentRequest.system_instruction', { requireRole: false });
    if (sys.parts.some((p) => typeof p.text !== 'string')) throw invalid('* GenerateContentRequest.system_instruction.parts: only text parts are allowed.');
  }
  checkGenerationConfig(pick(body, 'generationConfig'), model);
  if (pick(body, 'safetySettings') !== undefined && !Array.isArray(pick(body, 'safetySettings'))) throw invalid("Invalid value at 'safety_settings' (expected a list)");
  return checkTools(body);
}

// ---------------------------------------------------------------------------------------------
// Token counting (deterministic, documented in README.md)

function partTokens(p) {
  if (typeof p.text === 'string') return approxTokens(p.text);
  if (p.inlineData || p.fileData) return MEDIA_TOKENS;
  if (p.functionCall) return approxTokens(p.functionCall.name + JSON.stringify(p.functionCall.args ?? {}));
  if (p.functionResponse) return approxTokens(p.functionResponse.name + JSON.stringify(p.functionResponse.response));
  return approxTokens(JSON.stringify(p));
}

/** promptTokenCount: system instruction, every turn's parts and the function declarations. */
export function countPromptTokens(body) {
  let n = 0;
  for (const p of pick(body, 'systemInstruction')?.parts ?? []) n += partTokens(p);
  for (const c of body.contents) for (const p of c.parts) n += partTokens(p);
  for (const t of body.tools ?? []) for (const f of t.functionDeclarations ?? []) n += approxTokens(JSON.stringify(f));
  return n;
}

// ---------------------------------------------------------------------------------------------
// Planning an answer

const splitWords = (text) => text.match(/\s*\S+/g) ?? (text.length ? [text] : []);
const BLOCKING = new Set(['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY']);

/** Lower-cases Gemini's OpenAPI-subset types (STRING, OBJECT…) so one sampler serves both. */
function normSchema(s) {
  if (!isObj(s)) return s;
  const out = { ...s };
  if (typeof out.type === 'string') out.type = out.type.toLowerCase();
  if (isObj(out.properties)) out.properties = Object.fromEntries(Object.entries(out.properties).map(([k, v]) => [k, normSchema(v)]));
  if (out.items) out.items = normSchema(out.items);
  return out;
}

function cutPieces(pieces, budget, stops) {
  const out = [];
  let text = '';
  for (const piece of pieces) {
    if (out.length >= budget) return { pieces: out, finishReason: 'MAX_TOKENS' };
    const next = text + piece;
    const at = Math.min(...stops.map((s) => next.indexOf(s)).filter((i) => i !== -1));
    if (Number.isFinite(at)) {
      const rest = next.slice(text.length, at);
      if (rest) out.push(rest);
      return { pieces: out, finishReason: 'STOP' };
    }
    out.push(piece);
    text = next;
  }
  return { pieces: out, finishReason: 'STOP' };
}

// ---------------------------------------------------------------------------------------------
// Planning the answer

/**
 * The answer to a validated generateContent body: the steps (parts) every candidate gets, the
 * finish reason and the usage inputs. `model` is the known model (undefined: any model).
 */
export function planGenerate(body, modelId, functions, d, model) {
  const g = pick(body, 'generationConfig') ?? {};
  const n = g.candidateCount ?? 1;
  const thinking = g.thinkingConfig;
  // Thinking models think unless the budget is 0; thought parts only with includeThoughts.
  const thinks = (model?.thinking ?? true) && thinking?.thinkingBudget !== 0 && (thinking !== undefined || model?.thinking);
  const thoughtPieces = thinks ? splitWords(THINKING_TEXT) : [];
  const steps = []; // [{kind, part, tokens}], per candidate the same
  if (thinks && thinking?.includeThoughts) steps.push(...thoughtPieces.map((t) => ({ part: { text: t, thought: true }, thought: 1 })));
  const fc = pick(body, 'toolConfig')?.functionCallingConfig ?? {};
  const mode = fc.mode ?? 'AUTO';
  let finishReason;
  let call = null;
  if (functions.length && mode !== 'NONE') {
    if (mode === 'ANY' || mode === 'VALIDATED') call = functions.find((f) => (fc.allowedFunctionNames ?? [f.name]).includes(f.name));
    if (d.function_call !== undefined) call = d.function_call === '' ? call ?? functions[0] : functions.find((f) => f.name === d.function_call);
    if (d.function_call !== undefined && !call) throw invalid(`mock directive function_call names no declared function: ${d.function_call}`);
  }
  if (call) {
    let args;
    if (d.function_args !== undefined) {
      try {
        args = JSON.parse(d.function_args);
      } catch {
        throw invalid('mock directive function_args is not JSON');
      }
    } else {
      args = sampleFromSchema(normSchema(call.parametersJsonSchema ?? call.parameters ?? { type: 'object', properties: {} })) ?? {};
    }
    const part = { functionCall: { name: call.name, args } };
    steps.push({ part, output: approxTokens(call.name + JSON.stringify(args)) });
    finishReason = 'STOP';
  } else {
    const last = body.contents.at(-1).parts;
    const results = last.filter((p) => p.functionResponse);
    let pieces;
    if (results.length && d.reply === undefined && d.chunks === undefined) {
      pieces = splitWords(`Function result: ${results.map((r) => JSON.stringify(r.functionResponse.response)).join('; ')}`);
    } else if (g.responseMimeType === 'application/json' && d.reply === undefined && d.chunks === undefined) {
      const schema = g.responseJsonSchema ?? normSchema(g.responseSchema);
      const json = JSON.stringify(schema ? sampleFromSchema(schema) : { reply: 'Hello! How can I help you today?' });
      pieces = json.match(/.{1,8}/gs);
    } else {
      pieces = replyPieces(d);
    }
    const cut = cutPieces(pieces, g.maxOutputTokens ?? Infinity, g.stopSequences ?? []);
    steps.push(...cut.pieces.map((t) => ({ part: { text: t }, output: 1 })));
    finishReason = cut.finishReason;
  }
  if (d.finish_reason !== undefined) finishReason = d.finish_reason;
  const responseId = d.response_id ?? crypto.createHash('sha256').update(JSON.stringify([modelId, body.contents])).digest('base64url').slice(0, 22);
  return {
    modelId, n, steps, finishReason, responseId, d,
    promptTokens: d.prompt_tokens ?? countPromptTokens(body),
    cachedTokens: d.cached_tokens ?? 0,
    thoughtsTokens: d.thoughts_tokens ?? thoughtPieces.length,
    candidatesTokensOverride: d.candidates_tokens,
  };
}

// ---------------------------------------------------------------------------------------------
// The server

const JSON_TYPE = 'application/json; charset=UTF-8';

export class GeminiMock {
  /**
   * @param {object} [options]
   * @param {string} [options.apiKey] the key expected in `x-goog-api-key` (or `?key=`)
   * @param {Array<string|object>} [options.models] known models (ids or DEFAULT_MODELS-like objects)
   * @param {boolean} [options.anyModel] accept every model id
   */
  constructor(options = {}) {
    this.apiKey = options.apiKey ?? DEFAULT_API_KEY;
    this.models = (options.models ?? DEFAULT_MODELS).map((m) => (typeof m === 'string'
      ? DEFAULT_MODELS.find((d) => d.id === m) ?? { id: m, displayName: m, inputTokenLimit: 1048576, outputTokenLimit: 65536, thinking: true, methods: ['generateContent', 'countTokens'] }
      : { ...m }));
    this.anyModel = options.anyModel ?? false;
    this.host = options.host ?? '127.0.0.1';
    this.requests = [];
    this.waiters = new RecordWaiters(() => this.recorded());
    ({ server: this.server, sockets: this.sockets } = createMockServer(http, (req, res) => this.#handle(req, res)));
  }

  async start(port = 0) {
    await listenServer(this.server, port, this.host);
    return this.port;
  }

  get port() { return this.server.address().port; }
  /** The SDK's `httpOptions.baseUrl` and the provider's `base_url` (the client appends `/v1beta`). */
  get url() { return `http://${this.host}:${this.port}`; }
  get baseUrl() { return this.url; }

  async stop() {
    this.waiters.rejectAll();
    await closeServer(this.server, this.sockets);
  }

  clearRequests() { this.requests = []; }
  recorded() { return this.requests.map((r) => ({ ...r })); }
  waitFor(predicate, timeoutMs = 5_000, what = 'condition') { return this.waiters.wait(predicate, timeoutMs, what); }

  async #handle(req, res) {
    const url = new URL(req.url, 'http://mock');
    if (url.pathname.startsWith('/__mock/')) {
      return serveRecordAdmin(req, res, url, this, new GoogleError(404, `no mock admin route ${req.method} ${url.pathname}`).body());
    }
    const query = Object.fromEntries([...url.searchParams].filter(([k]) => k !== 'key'));
    const headers = { ...req.headers };
    if (headers['x-goog-api-key'] !== undefined) headers['x-goog-api-key'] = '[redacted]';
    const rec = {
      seq: this.requests.length + 1, method: req.method, path: url.pathname, query, connection_id: req.socket.mockConnectionId,
      headers, api_key_via: null, api_key_ok: false, body_text: '', body: null, received_at_ms: Date.now(),
      status: null, events_sent: 0, completed: false, closed_early: false,
    };
    this.requests.push(rec);
    res.on('close', () => { if (!res.writableFinished) rec.closed_early = true; this.waiters.notify(); });
    res.on('finish', () => { rec.completed = true; this.waiters.notify(); });
    try {
      rec.body_text = (await readBody(req)).toString('utf8');
      await this.#route(req, res, url, rec);
    } catch (err) {
      if (err instanceof GoogleError) this.#sendError(res, rec, err);
      else if (!res.headersSent) this.#sendError(res, rec, new GoogleError(500, `mock failure: ${err.message}`));
      else res.destroy();
    }
  }

  /** Google's JSON: pretty-printed with two spaces, a trailing newline. */
  #sendJson(res, rec, status, obj) {
    if (res.destroyed) return;
    const text = `${JSON.stringify(obj, null, 2)}\n`;
    rec.status = status;
    res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': String(Buffer.byteLength(text)),
      vary: 'Origin, X-Origin, Referer', 'x-content-type-options': 'nosniff', 'server-timing': 'gfet4t7; dur=1' });
    res.end(text);
  }

  #sendError(res, rec, err) { this.#sendJson(res, rec, err.code, err.body()); }

  #checkAuth(req, url, rec) {
    const header = req.headers['x-goog-api-key'];
    const query = url.searchParams.get('key');
    rec.api_key_via = header !== undefined ? 'header' : query !== null ? 'query' : null;
    rec.api_key_ok = (header ?? query) === this.apiKey;
    if (rec.api_key_via === null) throw new GoogleError(403, KEY_MISSING, [errorInfo('CONSUMER_INVALID')]);
    if (!rec.api_key_ok) {
      throw new GoogleError(400, KEY_INVALID, [errorInfo('API_KEY_INVALID'),
        { '@type': 'type.googleapis.com/google.rpc.LocalizedMessage', locale: 'en-US', message: KEY_INVALID }]);
    }
  }

  #model(id, method) {
    const m = this.models.find((x) => x.id === id);
    if (m && m.methods.includes(method)) return m;
    if (!m && this.anyModel) return { id, displayName: id, inputTokenLimit: 1048576, outputTokenLimit: 65536, thinking: true, dims: 768, methods: [method] };
    throw new GoogleError(404, notFoundMessage(id, method));
  }

  #parseBody(rec) {
    let body;
    try {
      body = JSON.parse(rec.body_text);
    } catch (e) {
      throw invalid(`Invalid JSON payload received. ${e.message}`);
    }
    if (!isObj(body)) throw invalid('Invalid JSON payload received. Expected an object.');
    rec.body = body;
    return body;
  }

  async #route(req, res, url, rec) {
    const p = url.pathname;
    const prefix = `/${API_VERSION}/models`;
    if (req.method === 'GET' && p === prefix) {
      this.#checkAuth(req, url, rec);
      return this.#listModels(res, rec, url.searchParams);
    }
    const get = req.method === 'GET' && p.startsWith(`${prefix}/`) && !p.includes(':') ? decodeURIComponent(p.slice(prefix.length + 1)) : null;
    if (get !== null) {
      this.#checkAuth(req, url, rec);
      const m = this.models.find((x) => x.id === get);
      if (!m) throw new GoogleError(404, `models/${get} is not found for API version ${API_VERSION}.`);
      return this.#sendJson(res, rec, 200, modelResource(m));
    }
    const m = req.method === 'POST' && new RegExp(`^${prefix}/([^/:]+):([A-Za-z]+)$`).exec(p);
    if (!m || !['generateContent', 'streamGenerateContent', 'embedContent', 'batchEmbedContents'].includes(m[2])) {
      rec.status = 404;
      const text = `<!DOCTYPE html>\n<html lang=en>\n  <title>Error 404 (Not Found)!!1</title>\n  <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>${p}</code> was not found on this server.  <ins>That’s all we know.</ins>\n`;
      res.writeHead(404, { 'content-type': 'text/html; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
      return res.end(text);
    }
    const modelId = decodeURIComponent(m[1]);
    const method = m[2];
    this.#checkAuth(req, url, rec);
    const body = this.#parseBody(rec);
    if (method === 'embedContent' || method === 'batchEmbedContents') return this.#embed(res, rec, modelId, method, body);
    if (method === 'streamGenerateContent' && url.searchParams.get('alt') !== 'sse') {
      throw invalid('The mock streams Server-Sent Events only: call streamGenerateContent with ?alt=sse (the JSON-array stream is not implemented).');
    }
    const model = this.models.find((x) => x.id === modelId);
    const functions = validateGenerateBody(body, model);
    this.#model(modelId, 'generateContent');
    let d;
    try {
      d = parseDirectives(partsText(body.contents.at(-1).parts));
    } catch (e) {
      throw invalid(e.message);
    }
    if (d.delay_ms) await sleep(d.delay_ms);
    if (res.destroyed) return undefined;
    if (d.drop) return res.socket?.destroy();
    if (d.status !== undefined && d.status !== 200) throw forcedError(d.status, modelId, d.retry_after);
    const plan = this.#plan(body, modelId, functions, d);
    if (method === 'generateContent') return this.#sendJson(res, rec, 200, responseAt(plan, plan.steps.length));
    return this.#stream(res, rec, plan, d);
  }

  #listModels(res, rec, q) {
    const size = q.has('pageSize') ? Number(q.get('pageSize')) : 50;
    if (!Number.isInteger(size) || size < 0) throw invalid('* ListModelsRequest.page_size: page_size must be non-negative');
    const start = q.get('pageToken') ? Number(Buffer.from(q.get('pageToken'), 'base64url').toString()) : 0;
    if (!Number.isInteger(start) || start < 0) throw invalid('Invalid page token.');
    const n = Math.min(size || 50, 1000);
    const page = this.models.slice(start, start + n);
    const out = { models: page.map(modelResource) };
    if (start + n < this.models.length) out.nextPageToken = Buffer.from(String(start + n)).toString('base64url');
    this.#sendJson(res, rec, 200, out);
  }

  #embed(res, rec, modelId, method, body) {
    const model = this.#model(modelId, 'embedContent');
    const dims = model.dims ?? 768;
    const one = (r, at) => {
      if (!isObj(r)) throw invalid(`* ${at}: Invalid value (expected an object)`);
      for (const k of Object.keys(r)) if (!['model', 'content', 'taskType', 'title', 'outputDimensionality', 'embedContentConfig'].includes(k)) throw unknownField(k, at);
      // The API reference deprecates the top-level fields for embedContentConfig; both are read.
      const cfg = r.embedContentConfig ?? {};
      if (!isObj(cfg)) throw invalid(`* ${at}.embed_content_config: Invalid value (expected an object)`);
      if (r.model !== undefined && r.model !== `models/${modelId}`) {
        throw invalid(`* BatchEmbedContentsRequest.${at}.model: model \`${r.model}\` does not match the model of the batch request \`models/${modelId}\`.`);
      }
      if (!isObj(r.content)) throw invalid(`* ${at}.content: content is not specified`);
      checkContent(r.content, `${at}.content`, { requireRole: false });
      if (r.content.parts.some((p) => typeof p.text !== 'string')) throw invalid(`* ${at}.content.parts: only text parts can be embedded.`);
      const od = cfg.outputDimensionality ?? r.outputDimensionality;
      if (od !== undefined && (!Number.isInteger(od) || od < 1 || od > dims)) throw invalid(`* ${at}.output_dimensionality: output_dimensionality must be in the range [1, ${dims}]`);
      let d;
      try {
        d = parseDirectives(partsText(r.content.parts));
      } catch (e) {
        throw invalid(e.message);
      }
      if (d.status !== undefined && d.status !== 200) throw forcedError(d.status, modelId, d.retry_after);
      const text = partsText(r.content.parts);
      return { values: Array.from(embeddingVector(modelId, text, od ?? dims)) };
    };
    if (method === 'embedContent') return this.#sendJson(res, rec, 200, { embedding: one(body, 'EmbedContentRequest') });
    if (!Array.isArray(body.requests) || body.requests.length === 0) throw invalid('* BatchEmbedContentsRequest.requests: requests is not specified');
    if (body.requests.length > 100) throw invalid('* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch');
    return this.#sendJson(res, rec, 200, { embeddings: body.requests.map((r, i) => one(r, `requests[${i}]`)) });
  }

  #plan(body, modelId, functions, d) {
    return planGenerate(body, modelId, functions, d, this.models.find((x) => x.id === modelId));
  }

  async #stream(res, rec, plan, d) {
    rec.status = 200;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache',
      vary: 'Origin, X-Origin, Referer', 'x-content-type-options': 'nosniff' });
    res.flushHeaders();
    return writeStream(res, plan, d, (text) => this.#write(res, rec, text));
  }

  #write(res, rec, text) {
    return new Promise((resolve) => res.write(text, (err) => {
      if (!err) rec.events_sent++;
      resolve(!err);
    }));
  }
}

/**
 * Writes the SSE events of `plan` (headers already sent) with `write(text)` → Promise<boolean>,
 * following the stream directives (chunk_delay_ms, cut_after, error_after / error_status);
 * `decorate(chunk)` may add members to each chunk (Vertex AI's).
 */
export async function writeStream(res, plan, d, write, decorate = (chunk) => chunk) {
  const count = Math.max(1, plan.steps.length);
  for (let i = 1; i <= count; i++) {
    if (d.cut_after !== undefined && i > d.cut_after) return res.socket?.destroy();
    if (d.error_after !== undefined && i > d.error_after) {
      const status = d.error_status ?? 503;
      await write(sseFrame(forcedError(status, plan.modelId).body()));
      return new Promise((resolve) => res.end(resolve));
    }
    if (i > 1 && d.chunk_delay_ms) await sleep(d.chunk_delay_ms);
    if (res.destroyed || !(await write(sseFrame(decorate(chunkAt(plan, i)))))) return undefined;
  }
  return new Promise((resolve) => res.end(resolve));
}

/** One SSE event as Google frames it: `data: JSON` and a CRLF blank line. */
export const sseFrame = (obj) => `data: ${JSON.stringify(obj)}\r\n\r\n`;

export function modelResource(m) {
  return {
    name: `models/${m.id}`, version: m.version ?? '001', displayName: m.displayName,
    description: m.description ?? `${m.displayName} (mock)`,
    inputTokenLimit: m.inputTokenLimit, outputTokenLimit: m.outputTokenLimit,
    supportedGenerationMethods: m.methods,
    ...(m.methods.includes('generateContent') ? { temperature: 1, topP: 0.95, topK: 64, maxTemperature: 2 } : {}),
    ...(m.thinking ? { thinking: true } : {}),
  };
}

/**
 * usageMetadata after `k` of the plan's steps. Zero-valued counts other than the three
 * always-present ones are omitted, as Google's proto3 JSON does.
 */
function usageAt(plan, k) {
  const done = plan.steps.slice(0, k);
  const output = plan.candidatesTokensOverride ?? done.reduce((s, x) => s + (x.output ?? 0), 0) * plan.n;
  // Thinking precedes the answer: without thought parts its whole count is there from the first
  // chunk; with them it grows with the thought chunks sent.
  const thoughtSteps = plan.steps.filter((x) => x.thought).length;
  const thoughtsDone = done.filter((x) => x.thought).length;
  const thoughts = thoughtSteps === 0 || thoughtsDone === thoughtSteps ? plan.thoughtsTokens : Math.min(thoughtsDone, plan.thoughtsTokens);
  const u = { promptTokenCount: plan.promptTokens };
  if (output) u.candidatesTokenCount = output;
  u.totalTokenCount = plan.promptTokens + output + thoughts;
  if (plan.cachedTokens) u.cachedContentTokenCount = plan.cachedTokens;
  u.promptTokensDetails = [{ modality: 'TEXT', tokenCount: plan.promptTokens }];
  if (plan.cachedTokens) u.cacheTokensDetails = [{ modality: 'TEXT', tokenCount: plan.cachedTokens }];
  if (thoughts) u.thoughtsTokenCount = thoughts;
  return u;
}

function candidate(plan, parts, index, finished) {
  const c = {};
  if (!(finished && BLOCKING.has(plan.finishReason))) c.content = { parts, role: 'model' };
  if (finished) c.finishReason = plan.finishReason;
  if (finished && BLOCKING.has(plan.finishReason)) {
    c.safetyRatings = [{ category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH', blocked: true }];
  }
  c.index = index;
  return c;
}

function envelope(plan, candidates, usage) {
  return { candidates, usageMetadata: usage, modelVersion: plan.modelId, responseId: plan.responseId };
}

/** The whole answer (generateContent): the first `k` steps merged, adjacent texts joined. */
export function responseAt(plan, k) {
  const parts = [];
  for (const s of plan.steps.slice(0, k)) {
    const prev = parts.at(-1);
    if (s.part.text !== undefined && prev?.text !== undefined && !!prev.thought === !!s.part.thought) prev.text += s.part.text;
    else parts.push({ ...s.part, ...(s.part.functionCall ? { functionCall: { ...s.part.functionCall } } : {}) });
  }
  const cands = Array.from({ length: plan.n }, (_, i) => candidate(plan, parts.map((p) => ({ ...p })), i, true));
  return envelope(plan, cands, usageAt(plan, k));
}

/** Stream chunk i (1-based): step i's part; the last one carries finishReason. */
export function chunkAt(plan, i) {
  const last = i >= plan.steps.length;
  const step = plan.steps[i - 1];
  const parts = step ? [{ ...step.part }] : [{ text: '' }];
  const cands = Array.from({ length: plan.n }, (_, j) => candidate(plan, parts, j, last));
  return envelope(plan, cands, usageAt(plan, i));
}

// ---------------------------------------------------------------------------------------------
// Command line

runMockCli(import.meta.url, {
  name: 'gemini_mock',
  usage: '--port N [--host H] [--api-key KEY] [--models a,b] [--any-model]',
  options: { '--api-key': ['apiKey', String], '--models': ['models', commaList], '--any-model': ['anyModel', true] },
  create: (opts) => new GeminiMock(opts),
  describe: (mock) => ({ base_url: mock.url, api_version: API_VERSION, api_key: mock.apiKey }),
});
