// A mock Anthropic upstream that follows Anthropic's documented Messages API wire format
// (Messages API reference, "Streaming Messages", "Errors", "Prompt caching", "Token counting",
// "Models" — see README.md beside this file for the pages and for what is simplified).
//
// Importable:   import { AnthropicMock } from './anthropic_mock.mjs';
//               const mock = new AnthropicMock(); await mock.start(); mock.baseUrl; await mock.stop();
// Runnable:     node tests/mock/anthropic_mock.mjs --port N [--host 127.0.0.1] [--api-key KEY]
//                                                   [--models a,b] [--any-model] [--min-cache-tokens N]
//
// Tests script it with directives written in the last user message, e.g. "[mock:status=529]",
// "[mock:tool_use]", "[mock:error_after=2]"; tool_choice, thinking, max_tokens and
// stop_sequences act as they do on the real API. Every request is recorded with the API key
// redacted (GET /__mock/requests, cleared by DELETE /__mock/requests).

import http from 'node:http';
import crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';

import { approxTokens, replyPieces } from './openai_mock.mjs';
import { directiveParser, createMockServer, listenServer, closeServer, serveRecordAdmin, sampleFromSchema } from './mock_util.mjs';

export const DEFAULT_API_KEY = 'sk-ant-mock-upstream-0123456789abcdef';
/** `anthropic-version` must be a date; the SDK pins its own (1.17.0 sends 2026-10-21). */
export const ANTHROPIC_VERSION_RE = /^\d{4}-\d{2}-\d{2}$/;
/** Known models: id, display name, release date and the output limit (max_tokens ceiling). */
export const DEFAULT_MODELS = Object.freeze([
  { id: 'claude-sonnet-4-5-20250929', display_name: 'Claude Sonnet 4.5', created_at: '2025-09-29T00:00:00Z', max_output: 64000 },
  { id: 'claude-opus-4-1-20250805', display_name: 'Claude Opus 4.1', created_at: '2025-08-05T00:00:00Z', max_output: 32000 },
  { id: 'claude-sonnet-4-20250514', display_name: 'Claude Sonnet 4', created_at: '2025-05-22T00:00:00Z', max_output: 64000 },
  { id: 'claude-haiku-4-5-20251001', display_name: 'Claude Haiku 4.5', created_at: '2025-10-15T00:00:00Z', max_output: 64000 },
  { id: 'claude-3-5-haiku-20241022', display_name: 'Claude Haiku 3.5', created_at: '2024-10-22T00:00:00Z', max_output: 8192 },
]);
/** Requests above this many bytes answer 413 request_too_large (the Messages API limit). */
export const MAX_REQUEST_BYTES = 32 * 1024 * 1024;
/** Prompt-caching minimum (Sonnet/Opus): a shorter prefix is not cached. */
export const DEFAULT_MIN_CACHE_TOKENS = 1024;
export const IMAGE_TOKENS = 1600;
export const THINKING_TEXT = 'The user sent a message. I should answer briefly and politely.';
const TTL_MS = { '5m': 5 * 60_000, '1h': 60 * 60_000 };
const ADMIN_PREFIX = '/__mock/';

// ---------------------------------------------------------------------------------------------
// Directives

const INT_DIRECTIVES = new Set(['status', 'retry_after', 'delay_ms', 'chunk_delay_ms', 'chunks', 'piece_bytes',
  'error_after', 'cut_after', 'end_after', 'input_tokens', 'output_tokens']);
const FLAG_DIRECTIVES = new Set(['drop']);
// parallel_tools: empty (all tools) or a count, checked when planning.
const STRING_DIRECTIVES = new Set(['reply', 'id', 'tool_use', 'tool_input', 'error_type', 'parallel_tools']);

/** Parses every `[mock:name=value]` / `[mock:flag]` of `text`. Unknown names throw. */
export const parseDirectives = directiveParser(INT_DIRECTIVES, FLAG_DIRECTIVES, STRING_DIRECTIVES);

/** The last message that is not a mid-conversation system message. */
const lastTurn = (messages) => messages.findLast((m) => m?.role !== 'system');

/** The text of the last user message (string content, or its text blocks). */
export function lastUserText(messages) {
  const m = lastTurn(messages);
  if (m?.role !== 'user') return '';
  if (typeof m.content === 'string') return m.content;
  return m.content.filter((b) => b.type === 'text').map((b) => b.text).join('\n');
}

// ---------------------------------------------------------------------------------------------
// Deterministic helpers

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
function b62(seed, length) {
  const bytes = crypto.createHash('sha256').update(seed).digest();
  let s = '';
  for (let i = 0; s.length < length; i++) s += B62[bytes[i % bytes.length] % 62];
  return s;
}
const requestId = () => `req_01${b62(crypto.randomBytes(16), 22)}`;

function splitWords(text) {
  return text.match(/\s*\S+/g) ?? (text.length ? [text] : []);
}

function splitEvery(text, n) {
  const out = [];
  for (let i = 0; i < text.length; i += n) out.push(text.slice(i, i + n));
  return out;
}

export { sampleFromSchema } from './mock_util.mjs';

// ---------------------------------------------------------------------------------------------
// Errors in Anthropic's shape

const ERROR_TYPES = {
  400: 'invalid_request_error', 401: 'authentication_error', 402: 'billing_error', 403: 'permission_error',
  404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error',
  504: 'timeout_error', 529: 'overloaded_error',
};
export const FORCED_MESSAGES = {
  400: 'Invalid request (forced by mock).',
  401: 'invalid x-api-key',
  402: 'Your credit balance is too low to access the Anthropic API.',
  403: 'Your API key does not have permission to use the specified resource.',
  413: 'Request exceeds the maximum allowed number of bytes.',
  429: 'This request would exceed the rate limit for your organization of 50 requests per minute.',
  500: 'Internal server error',
  504: 'Request timed out',
  529: 'Overloaded',
};

export function errorType(status) {
  return ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

export class ApiError extends Error {
  constructor(status, message, type = errorType(status), headers = {}) {
    super(message);
    this.status = status;
    this.type = type;
    this.headers = headers;
  }
}
const invalid = (message) => new ApiError(400, message);

// ---------------------------------------------------------------------------------------------
// Request validation (Anthropic's messages: `path: problem`)

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const MESSAGE_FIELDS = new Set(['model', 'max_tokens', 'messages', 'system', 'metadata', 'stop_sequences',
  'stream', 'temperature', 'top_p', 'top_k', 'tools', 'tool_choice', 'thinking', 'service_tier',
  'output_config', 'context_management']);
const COUNT_FIELDS = new Set(['model', 'messages', 'system', 'tools', 'tool_choice', 'thinking', 'output_config',
  'context_management']);
/** Beta features: a request member (top-level, or `tools.N.` for a tool's) is taken only when
 *  the `anthropic-beta` header names its beta; without it the member is an extra input. */
export const BETA_MEMBERS = Object.freeze({
  context_management: 'context-management-2025-06-27',
  'tools.defer_loading': 'advanced-tool-use-2025-11-20',
});
const EFFORTS = ['low', 'medium', 'high', 'xhigh', 'max'];
const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'];
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function checkCacheControl(cc, where, breakpoints) {
  if (cc === undefined || cc === null) return;
  if (!isObj(cc) || cc.type !== 'ephemeral') throw invalid(`${where}.cache_control.type: Input should be 'ephemeral'`);
  if (cc.ttl !== undefined && !(cc.ttl in TTL_MS)) throw invalid(`${where}.cache_control.ttl: Input should be '5m' or '1h'`);
  breakpoints.push(cc.ttl ?? '5m');
}

function checkText(b, where, breakpoints) {
  if (typeof b.text !== 'string') throw invalid(`${where}.text: Field required`);
  if (b.text.length === 0) throw invalid(`${where}: text content blocks must be non-empty`);
  checkCacheControl(b.cache_control, where, breakpoints);
}

function checkImage(b, where, breakpoints) {
  const s = b.source;
  if (!isObj(s)) throw invalid(`${where}.source: Field required`);
  if (s.type === 'base64') {
    if (!IMAGE_TYPES.includes(s.media_type)) {
      throw invalid(`${where}.source.base64.media_type: Input should be ${IMAGE_TYPES.map((t) => `'${t}'`).join(', ')}`);
    }
    if (typeof s.data !== 'string' || !BASE64_RE.test(s.data)) throw invalid(`${where}.source.base64.data: Invalid base64 data`);
  } else if (s.type === 'url') {
    if (typeof s.url !== 'string' || !/^https?:\/\//.test(s.url)) throw invalid(`${where}.source.url.url: Input should be a valid URL`);
  } else {
    throw invalid(`${where}.source: Input tag '${s.type}' found using 'type' does not match any of the expected tags: 'base64', 'url'`);
  }
  checkCacheControl(b.cache_control, where, breakpoints);
}

function checkBlock(b, where, role, breakpoints) {
  if (!isObj(b)) throw invalid(`${where}: Input should be a valid dictionary or object`);
  switch (b.type) {
    case 'text': return checkText(b, where, breakpoints);
    case 'image': return checkImage(b, where, breakpoints);
    case 'tool_use':
      if (role !== 'assistant') throw invalid(`${where}: tool_use blocks may only appear in assistant messages`);
      if (typeof b.id !== 'string' || typeof b.name !== 'string') throw invalid(`${where}: tool_use blocks need id and name`);
      if (!isObj(b.input)) throw invalid(`${where}.input: Input should be a valid dictionary`);
      return checkCacheControl(b.cache_control, where, breakpoints);
    case 'tool_result':
      if (role !== 'user') throw invalid(`${where}: tool_result blocks may only appear in user messages`);
      if (typeof b.tool_use_id !== 'string') throw invalid(`${where}.tool_use_id: Field required`);
      if (b.is_error !== undefined && typeof b.is_error !== 'boolean') throw invalid(`${where}.is_error: Input should be a valid boolean`);
      if (Array.isArray(b.content)) {
        b.content.forEach((c, k) => {
          if (c?.type === 'text') checkText(c, `${where}.content.${k}`, []);
          else if (c?.type === 'image') checkImage(c, `${where}.content.${k}`, []);
          else throw invalid(`${where}.content.${k}: Input tag '${c?.type}' found using 'type' does not match any of the expected tags: 'text', 'image'`);
        });
      } else if (b.content !== undefined && typeof b.content !== 'string') {
        throw invalid(`${where}.content: Input should be a valid string or list`);
      }
      return checkCacheControl(b.cache_control, where, breakpoints);
    case 'thinking':
      if (role !== 'assistant') throw invalid(`${where}: thinking blocks may only appear in assistant messages`);
      if (typeof b.thinking !== 'string' || typeof b.signature !== 'string') throw invalid(`${where}: thinking blocks need thinking and signature`);
      return undefined;
    case 'redacted_thinking':
      if (typeof b.data !== 'string') throw invalid(`${where}.data: Field required`);
      return undefined;
    default:
      throw invalid(`${where}: Input tag '${b.type}' found using 'type' does not match any of the expected tags: 'text', 'image', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking'`);
  }
}

function checkMessages(messages, strictTurns, breakpoints) {
  if (messages === undefined) throw invalid('messages: Field required');
  if (!Array.isArray(messages)) throw invalid('messages: Input should be a valid list');
  if (messages.length === 0) throw invalid('messages: at least one message is required');
  messages.forEach((m, i) => {
    const at = `messages.${i}`;
    if (!isObj(m)) throw invalid(`${at}: Input should be a valid dictionary or object`);
    if (m.role === 'system') {
      // A mid-conversation system message: text only, never first (that is the top-level `system`).
      if (i === 0) {
        throw invalid(`${at}.role: Unexpected role "system". The Messages API accepts a top-level \`system\` parameter, not "system" as the first message role.`);
      }
      if (typeof m.content === 'string') {
        if (m.content.length === 0) throw invalid(`${at}: system messages must have non-empty content`);
      } else if (Array.isArray(m.content)) {
        m.content.forEach((b, k) => {
          if (b?.type !== 'text') throw invalid(`${at}.content.${k}.type: system messages take text blocks only`);
          checkText(b, `${at}.content.${k}`, breakpoints);
        });
      } else {
        throw invalid(`${at}.content: Input should be a valid string or list`);
      }
      return;
    }
    if (m.role !== 'user' && m.role !== 'assistant') throw invalid(`${at}.role: Input should be 'user', 'assistant' or 'system'`);
    const previous = messages.slice(0, i).findLast((x) => x?.role !== 'system');
    if (strictTurns && previous === undefined && m.role !== 'user') throw invalid('messages: first message must use the "user" role');
    if (strictTurns && previous?.role === m.role) {
      throw invalid(`messages: roles must alternate between "user" and "assistant", but found multiple "${m.role}" roles in a row`);
    }
    if (typeof m.content === 'string') {
      if (m.content.length === 0 && i !== messages.length - 1) throw invalid(`${at}: all messages must have non-empty content except for the optional final assistant message`);
    } else if (Array.isArray(m.content)) {
      m.content.forEach((b, k) => checkBlock(b, `${at}.content.${k}`, m.role, breakpoints));
    } else {
      throw invalid(`${at}.content: Input should be a valid string or list`);
    }
  });
  // tool_use ↔ tool_result pairing across adjacent turns.
  const blocks = (m) => (Array.isArray(m?.content) ? m.content : []);
  messages.forEach((m, i) => {
    if (m.role === 'assistant' && i + 1 < messages.length) {
      const results = new Set(blocks(messages[i + 1]).filter((b) => b.type === 'tool_result').map((b) => b.tool_use_id));
      const missing = blocks(m).filter((b) => b.type === 'tool_use' && !results.has(b.id)).map((b) => b.id);
      if (missing.length) {
        throw invalid(`messages.${i + 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
      }
    }
    if (m.role === 'user') {
      const uses = new Set(blocks(messages[i - 1]).filter((b) => b.type === 'tool_use').map((b) => b.id));
      blocks(m).forEach((b, k) => {
        if (b.type === 'tool_result' && !uses.has(b.tool_use_id)) {
          throw invalid(`messages.${i}.content.${k}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${b.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
        }
      });
    }
  });
  const last = lastTurn(messages);
  if (last?.role === 'assistant') {
    const text = typeof last.content === 'string' ? last.content : blocks(last).filter((b) => b.type === 'text').map((b) => b.text).join('');
    if (/\s$/.test(text)) throw invalid('messages: final assistant content cannot end with trailing whitespace');
  }
}

function checkTools(body, breakpoints, betas) {
  const names = new Set();
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) throw invalid('tools: Input should be a valid list');
    body.tools.forEach((t, i) => {
      const at = `tools.${i}`;
      if (!isObj(t)) throw invalid(`${at}: Input should be a valid dictionary or object`);
      if (t.type !== undefined && t.type !== 'custom') throw invalid(`${at}.type: the mock supports client tools only (type 'custom'), got '${t.type}'`);
      if (typeof t.name !== 'string') throw invalid(`${at}.name: Field required`);
      if (!/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) throw invalid(`${at}.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
      if (names.has(t.name)) throw invalid('tools: Tool names must be unique.');
      names.add(t.name);
      if (t.description !== undefined && typeof t.description !== 'string') throw invalid(`${at}.description: Input should be a valid string`);
      if (!isObj(t.input_schema)) throw invalid(`${at}.input_schema: Field required`);
      if (t.defer_loading !== undefined) {
        if (!betas.has(BETA_MEMBERS['tools.defer_loading'])) throw invalid(`${at}.defer_loading: Extra inputs are not permitted`);
        if (typeof t.defer_loading !== 'boolean') throw invalid(`${at}.defer_loading: Input should be a valid boolean`);
      }
      if (t.input_schema.type !== 'object') throw invalid(`${at}.input_schema.type: Input should be 'object'`);
      checkCacheControl(t.cache_control, at, breakpoints);
    });
  }
  const tc = body.tool_choice;
  if (tc !== undefined) {
    if (!isObj(tc) || !['auto', 'any', 'tool', 'none'].includes(tc.type)) {
      throw invalid(`tool_choice: Input tag '${tc?.type}' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'`);
    }
    if (tc.disable_parallel_tool_use !== undefined && typeof tc.disable_parallel_tool_use !== 'boolean') {
      throw invalid('tool_choice.disable_parallel_tool_use: Input should be a valid boolean');
    }
    if ((tc.type === 'any' || tc.type === 'tool') && names.size === 0) throw invalid(`tool_choice: tool_choice.type '${tc.type}' requires tools`);
    if (tc.type === 'tool' && !names.has(tc.name)) throw invalid(`tool_choice.name: Tool '${tc.name}' not found in tools`);
  }
}

/** Whether the answer thinks: false, 'summarized' (the thinking text) or 'omitted' (an empty
 *  thinking block with its signature). */
function checkThinking(body, forCount) {
  const th = body.thinking;
  if (th === undefined) return false;
  if (!isObj(th) || !['enabled', 'adaptive', 'disabled'].includes(th.type)) {
    throw invalid(`thinking: Input tag '${th?.type}' found using 'type' does not match any of the expected tags: 'enabled', 'adaptive', 'disabled'`);
  }
  if (th.type === 'disabled') return false;
  if (th.display !== undefined && !['summarized', 'omitted'].includes(th.display)) {
    throw invalid(`thinking.${th.type}.display: Input should be 'summarized' or 'omitted'`);
  }
  if (th.type === 'enabled') {
    if (!Number.isInteger(th.budget_tokens)) throw invalid('thinking.enabled.budget_tokens: Field required');
    if (th.budget_tokens < 1024) throw invalid('thinking.enabled.budget_tokens: Input should be greater than or equal to 1024');
    if (!forCount && th.budget_tokens >= body.max_tokens) throw invalid('`max_tokens` must be greater than `thinking.budget_tokens`');
  } else if (th.budget_tokens !== undefined) {
    throw invalid('thinking.adaptive.budget_tokens: Extra inputs are not permitted');
  }
  if (body.temperature !== undefined && body.temperature !== 1) throw invalid('`temperature` may only be set to 1 when thinking is enabled.');
  if (body.top_k !== undefined) throw invalid('`top_k` must be unset when thinking is enabled.');
  if (body.top_p !== undefined && body.top_p < 0.95) throw invalid('`top_p` must be unset or between 0.95 and 1 when thinking is enabled.');
  if (body.tool_choice?.type === 'any' || body.tool_choice?.type === 'tool') throw invalid('Thinking may not be enabled when tool_choice forces tool use.');
  return th.display ?? 'summarized';
}

function checkOutputConfig(oc) {
  if (oc === undefined) return;
  if (!isObj(oc)) throw invalid('output_config: Input should be a valid dictionary');
  for (const k of Object.keys(oc)) if (k !== 'effort' && k !== 'format') throw invalid(`output_config.${k}: Extra inputs are not permitted`);
  if (oc.effort !== undefined && !EFFORTS.includes(oc.effort)) {
    throw invalid(`output_config.effort: Input should be ${EFFORTS.map((e) => `'${e}'`).join(', ')}`);
  }
  if (oc.format !== undefined && (!isObj(oc.format) || oc.format.type !== 'json_schema' || !isObj(oc.format.schema))) {
    throw invalid("output_config.format: Input should be {type: 'json_schema', schema}");
  }
}

function checkContextManagement(cm) {
  if (cm === undefined) return;
  if (!isObj(cm) || (cm.edits !== undefined && !Array.isArray(cm.edits))) throw invalid('context_management.edits: Input should be a valid list');
  (cm.edits ?? []).forEach((e, i) => {
    if (!isObj(e) || typeof e.type !== 'string') throw invalid(`context_management.edits.${i}.type: Field required`);
  });
}

/** The betas an `anthropic-beta` header value names (comma-separated). */
export const parseBetas = (header) => new Set((header ?? '').split(',').map((b) => b.trim()).filter(Boolean));

/**
 * Validates a Messages (or count_tokens) body; returns {thinking, breakpoints}. `betas`: the
 * betas the request's `anthropic-beta` header named (a Set).
 */
export function validateMessagesBody(body, { forCount = false, strictTurns = true, maxOutput, betas = new Set() } = {}) {
  for (const k of Object.keys(body)) {
    if (!(forCount ? COUNT_FIELDS : MESSAGE_FIELDS).has(k) || (k in BETA_MEMBERS && !betas.has(BETA_MEMBERS[k]))) {
      throw invalid(`${k}: Extra inputs are not permitted`);
    }
  }
  if (body.model === undefined) throw invalid('model: Field required');
  if (typeof body.model !== 'string') throw invalid('model: Input should be a valid string');
  if (!forCount) {
    if (body.max_tokens === undefined) throw invalid('max_tokens: Field required');
    if (!Number.isInteger(body.max_tokens)) throw invalid('max_tokens: Input should be a valid integer');
    if (body.max_tokens < 1) throw invalid('max_tokens: Input should be greater than or equal to 1');
    if (maxOutput !== undefined && body.max_tokens > maxOutput) {
      throw invalid(`max_tokens: ${body.max_tokens} > ${maxOutput}, which is the maximum allowed number of output tokens for ${body.model}`);
    }
  }
  const breakpoints = [];
  checkTools(body, breakpoints, betas);
  checkOutputConfig(body.output_config);
  checkContextManagement(body.context_management);
  if (body.system !== undefined) {
    if (Array.isArray(body.system)) {
      body.system.forEach((b, i) => {
        if (b?.type !== 'text') throw invalid(`system.${i}.type: Input should be 'text'`);
        checkText(b, `system.${i}`, breakpoints);
      });
    } else if (typeof body.system !== 'string') {
      throw invalid('system: Input should be a valid string or list');
    }
  }
  checkMessages(body.messages, strictTurns, breakpoints);
  if (breakpoints.length > 4) throw invalid(`A maximum of 4 blocks with cache_control may be provided. Found ${breakpoints.length}.`);
  // Longer TTLs first: a '1h' breakpoint after a '5m' one is refused.
  const first5m = breakpoints.indexOf('5m');
  if (first5m !== -1 && breakpoints.slice(first5m).includes('1h')) {
    throw invalid("a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block");
  }
  if (body.stop_sequences !== undefined &&
      (!Array.isArray(body.stop_sequences) || body.stop_sequences.some((s) => typeof s !== 'string' || s.trim() === ''))) {
    throw invalid('stop_sequences: each stop sequence must be a string containing non-whitespace characters');
  }
  for (const [k, lo, hi] of [['temperature', 0, 1], ['top_p', 0, 1]]) {
    if (body[k] !== undefined && (typeof body[k] !== 'number' || body[k] < lo || body[k] > hi)) {
      throw invalid(`${k}: Input should be a number between ${lo} and ${hi}`);
    }
  }
  if (body.top_k !== undefined && (!Number.isInteger(body.top_k) || body.top_k < 0)) throw invalid('top_k: Input should be a non-negative integer');
  if (body.metadata !== undefined) {
    if (!isObj(body.metadata)) throw invalid('metadata: Input should be a valid dictionary');
    for (const k of Object.keys(body.metadata)) if (k !== 'user_id') throw invalid(`metadata.${k}: Extra inputs are not permitted`);
    const u = body.metadata.user_id;
    if (u !== undefined && u !== null && (typeof u !== 'string' || u.length > 256)) throw invalid('metadata.user_id: Input should be a string of at most 256 characters');
  }
  if (body.stream !== undefined && typeof body.stream !== 'boolean') throw invalid('stream: Input should be a valid boolean');
  if (body.service_tier !== undefined && !['auto', 'standard_only'].includes(body.service_tier)) {
    throw invalid("service_tier: Input should be 'auto' or 'standard_only'");
  }
  return { thinking: checkThinking(body, forCount), breakpoints };
}

// ---------------------------------------------------------------------------------------------
// Token counting and prompt caching

const withoutCc = ({ cache_control: _cc, ...rest }) => rest;

function blockTokens(b) {
  switch (b.type) {
    case 'text': return approxTokens(b.text);
    case 'image': return IMAGE_TOKENS;
    case 'tool_use': return approxTokens(b.name + JSON.stringify(b.input));
    case 'tool_result':
      if (typeof b.content === 'string') return approxTokens(b.content);
      return (b.content ?? []).reduce((s, c) => s + blockTokens(c), 0);
    case 'thinking': return approxTokens(b.thinking);
    case 'redacted_thinking': return approxTokens(b.data);
    default: return 0;
  }
}

/**
 * The prompt as a list of units in cache-prefix order (tools, system, messages), each with
 * its tokens, its cache_control and a hash of the prefix that ends with it.
 */
export function promptUnits(body) {
  const units = [];
  const add = (key, tokens, cc) => units.push({ key: JSON.stringify(key), tokens, cc });
  for (const t of body.tools ?? []) add(['tool', withoutCc(t)], approxTokens(JSON.stringify({ name: t.name, description: t.description, input_schema: t.input_schema })), t.cache_control);
  if (typeof body.system === 'string') add(['system', body.system], approxTokens(body.system));
  else for (const b of body.system ?? []) add(['system', withoutCc(b)], approxTokens(b.text), b.cache_control);
  body.messages.forEach((m) => {
    if (typeof m.content === 'string') add([m.role, m.content], approxTokens(m.content));
    else m.content.forEach((b) => add([m.role, withoutCc(b)], blockTokens(b), b.cache_control));
  });
  let h = crypto.createHash('sha256').update(body.model).digest('hex');
  let cum = 0;
  for (const u of units) {
    h = crypto.createHash('sha256').update(h).update(u.key).digest('hex');
    cum += u.tokens;
    u.prefixHash = h;
    u.prefixTokens = cum;
  }
  return units;
}

export function countInputTokens(body) {
  return promptUnits(body).reduce((s, u) => s + u.tokens, 0);
}

// ---------------------------------------------------------------------------------------------
// Answers

function usageObject(p) {
  return {
    input_tokens: p.inputTokens,
    cache_creation_input_tokens: p.cacheWrite5m + p.cacheWrite1h,
    cache_read_input_tokens: p.cacheRead,
    cache_creation: { ephemeral_5m_input_tokens: p.cacheWrite5m, ephemeral_1h_input_tokens: p.cacheWrite1h },
    output_tokens: p.outputTokens,
    service_tier: 'standard',
  };
}

/** The Message object answered without streaming. */
export function messageBody(p) {
  return {
    id: p.id,
    type: 'message',
    role: 'assistant',
    model: p.model,
    content: p.blocks.map((b) => b.final),
    stop_reason: p.stopReason,
    stop_sequence: p.stopSequence,
    usage: usageObject(p),
  };
}

/** The SSE events [name, data] of a streamed answer, in Anthropic's order. */
export function streamEvents(p) {
  const ev = [];
  const usage = usageObject(p);
  ev.push(['message_start', { type: 'message_start', message: { ...messageBody(p), content: [],
    stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: Math.min(1, p.outputTokens) } } }]);
  p.blocks.forEach((b, index) => {
    ev.push(['content_block_start', { type: 'content_block_start', index, content_block: b.start }]);
    if (index === 0) ev.push(['ping', { type: 'ping' }]);
    for (const delta of b.deltas) ev.push(['content_block_delta', { type: 'content_block_delta', index, delta }]);
    ev.push(['content_block_stop', { type: 'content_block_stop', index }]);
  });
  ev.push(['message_delta', { type: 'message_delta', delta: { stop_reason: p.stopReason, stop_sequence: p.stopSequence },
    usage: { input_tokens: usage.input_tokens, cache_creation_input_tokens: usage.cache_creation_input_tokens,
      cache_read_input_tokens: usage.cache_read_input_tokens, output_tokens: usage.output_tokens } }]);
  ev.push(['message_stop', { type: 'message_stop' }]);
  return ev;
}

export const sseEvent = (name, data) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

function textBlock(pieces) {
  return { final: { type: 'text', text: pieces.join('') }, start: { type: 'text', text: '' },
    deltas: pieces.map((text) => ({ type: 'text_delta', text })), tokens: pieces.length };
}

/** Text pieces cut by stop_sequences and max_tokens, as generation would stop. */
function cutText(pieces, budget, stopSequences) {
  const out = [];
  let text = '';
  for (const piece of pieces) {
    if (out.length >= budget) return { pieces: out, stopReason: 'max_tokens', stopSequence: null };
    const next = text + piece;
    let hit = null;
    for (const s of stopSequences) {
      const at = next.indexOf(s);
      if (at !== -1 && (hit === null || at < hit.at)) hit = { at, s };
    }
    if (hit) {
      const rest = next.slice(text.length, hit.at);
      if (rest) out.push(rest);
      return { pieces: out, stopReason: 'stop_sequence', stopSequence: hit.s };
    }
    out.push(piece);
    text = next;
  }
  return { pieces: out, stopReason: 'end_turn', stopSequence: null };
}

// ---------------------------------------------------------------------------------------------
// Planning and streaming an answer

/** The error `[mock:status=N]` (`[mock:retry_after=S]`) answers with, for `model`. */
export function forcedError(d, model) {
  const message = d.status === 404 ? `model: ${model}` : FORCED_MESSAGES[d.status] ?? `Mock error with status ${d.status}.`;
  return new ApiError(d.status, message, errorType(d.status),
    d.status === 429 ? { 'retry-after': String(d.retry_after ?? 15), 'anthropic-ratelimit-requests-remaining': '0' } : {});
}

/**
 * Prompt caching: {read, write5m, write1h, total} for this prompt, updating `cache` (a Map of
 * prefix hash → expiry in ms); prefixes shorter than `minCacheTokens` are not cached.
 */
export function cacheUsage(cache, body, minCacheTokens) {
  const units = promptUnits(body);
  const now = Date.now();
  const bps = units.filter((u) => u.cc);
  let hit = null;
  for (const u of [...bps].reverse()) {
    if ((cache.get(u.prefixHash) ?? 0) > now) { hit = u; break; }
  }
  const out = { read: hit?.prefixTokens ?? 0, write5m: 0, write1h: 0, total: units.reduce((s, u) => s + u.tokens, 0) };
  let covered = out.read;
  for (const u of bps) {
    if (u.prefixTokens < minCacheTokens) continue; // too short to be cached
    const ttl = u.cc.ttl ?? '5m';
    cache.set(u.prefixHash, now + TTL_MS[ttl]); // written, or refreshed on a hit
    if (u.prefixTokens <= covered) continue;
    out[ttl === '1h' ? 'write1h' : 'write5m'] += u.prefixTokens - covered;
    covered = u.prefixTokens;
  }
  return out;
}

/**
 * The answer to a validated Messages body: content blocks (final form, start and deltas), stop
 * reason and usage. `checked` is validateMessagesBody's result, `cache` cacheUsage's.
 */
export function planMessage(body, d, { thinking }, cache) {
  const id = d.id ?? `msg_01${b62(JSON.stringify([body.model, body.system, body.messages, body.tools]), 22)}`;
  const blocks = [];
  let outputTokens = 0;
  if (thinking) {
    const pieces = splitWords(THINKING_TEXT);
    const signature = `Eq${crypto.createHash('sha512').update(`${id}${THINKING_TEXT}`).digest('base64')}`;
    // display 'omitted': the model still thinks (and bills it), the text is not sent.
    const shown = thinking === 'omitted' ? [] : pieces;
    blocks.push({ final: { type: 'thinking', thinking: shown.join(''), signature },
      start: { type: 'thinking', thinking: '', signature: '' },
      deltas: [...shown.map((p) => ({ type: 'thinking_delta', thinking: p })), { type: 'signature_delta', signature }] });
    outputTokens += pieces.length;
  }
  const tools = body.tools ?? [];
  const tc = body.tool_choice ?? { type: 'auto' };
  let chosen = [];
  if (tools.length && tc.type !== 'none') {
    if (tc.type === 'tool') chosen = [tools.find((t) => t.name === tc.name)];
    else if (d.tool_use !== undefined && d.tool_use !== '') chosen = [tools.find((t) => t.name === d.tool_use)];
    else if (d.parallel_tools !== undefined) {
      const n = d.parallel_tools === '' ? tools.length : Number(d.parallel_tools);
      if (!Number.isInteger(n) || n < 1) throw invalid('mock directive parallel_tools needs a positive integer or no value');
      chosen = tools.slice(0, n);
    }
    else if (d.tool_use !== undefined || tc.type === 'any') chosen = [tools[0]];
    if (chosen.some((t) => t === undefined)) throw invalid(`mock directive tool_use names no tool in tools: ${d.tool_use}`);
    if (tc.disable_parallel_tool_use) chosen = chosen.slice(0, 1);
  }
  let stopReason;
  let stopSequence = null;
  if (chosen.length) {
    if (tc.type === 'auto') {
      const pre = textBlock(splitWords(`I'll use ${chosen.map((t) => t.name).join(' and ')}.`));
      blocks.push(pre);
      outputTokens += pre.tokens;
    }
    let input;
    if (d.tool_input !== undefined) {
      try {
        input = JSON.parse(d.tool_input);
      } catch {
        throw invalid('mock directive tool_input is not JSON');
      }
    }
    chosen.forEach((t, i) => {
      const value = input ?? sampleFromSchema(t.input_schema);
      const json = JSON.stringify(value);
      const toolId = `toolu_01${b62(`${id}#${i}`, 22)}`;
      blocks.push({ final: { type: 'tool_use', id: toolId, name: t.name, input: value },
        start: { type: 'tool_use', id: toolId, name: t.name, input: {} },
        deltas: ['', ...splitEvery(json, 12)].map((partial_json) => ({ type: 'input_json_delta', partial_json })) });
      outputTokens += approxTokens(t.name + json);
    });
    stopReason = 'tool_use';
  } else {
    const last = lastTurn(body.messages);
    const results = Array.isArray(last.content) ? last.content.filter((b) => b.type === 'tool_result') : [];
    let pieces;
    if (results.length && d.reply === undefined && d.chunks === undefined) {
      const text = results.map((r) => (typeof r.content === 'string' ? r.content
        : (r.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join(' '))).join('; ');
      pieces = splitWords(`Tool result: ${text}`);
    } else {
      pieces = replyPieces(d);
    }
    const cut = cutText(pieces, Math.max(0, body.max_tokens - outputTokens), body.stop_sequences ?? []);
    const tb = textBlock(cut.pieces);
    blocks.push(tb);
    outputTokens += tb.tokens;
    stopReason = cut.stopReason;
    stopSequence = cut.stopSequence;
  }
  return {
    id, model: body.model, blocks, stopReason, stopSequence,
    inputTokens: d.input_tokens ?? cache.total - cache.read - cache.write5m - cache.write1h,
    cacheRead: cache.read, cacheWrite5m: cache.write5m, cacheWrite1h: cache.write1h,
    outputTokens: d.output_tokens ?? outputTokens,
  };
}

/**
 * Writes the SSE events of `plan` (headers already sent) with `write(text)` → Promise<boolean>,
 * following the stream directives (chunk_delay_ms, cut_after, end_after, error_after / error_type).
 */
export async function writeMessageStream(res, plan, d, write) {
  let deltas = 0;
  const events = streamEvents(plan);
  for (let i = 0; i < events.length; i++) {
    if (d.cut_after !== undefined && i >= d.cut_after) return res.socket?.destroy();
    if (d.end_after !== undefined && i >= d.end_after) break;
    if (d.error_after !== undefined && deltas >= d.error_after && events[i][0] === 'content_block_delta') {
      const type = d.error_type || 'overloaded_error';
      const status = Object.keys(ERROR_TYPES).find((s) => ERROR_TYPES[s] === type);
      const message = FORCED_MESSAGES[status] ?? `Mock stream error ${type}.`;
      await write(sseEvent('error', { type: 'error', error: { type, message } }));
      break;
    }
    if (i > 0 && d.chunk_delay_ms) await sleep(d.chunk_delay_ms);
    if (res.destroyed || !(await write(sseEvent(...events[i])))) return undefined;
    if (events[i][0] === 'content_block_delta') deltas++;
  }
  return new Promise((resolve) => res.end(resolve));
}

// ---------------------------------------------------------------------------------------------
// The server

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());

function redactHeaders(headers) {
  const out = { ...headers };
  if (out['x-api-key'] !== undefined) out['x-api-key'] = '[redacted]';
  if (out.authorization !== undefined) out.authorization = out.authorization.replace(/^(\S+\s+).*$/, '$1[redacted]');
  return out;
}

export class AnthropicMock {
  /**
   * @param {object} [options]
   * @param {string} [options.apiKey] the key expected in `x-api-key` (or `Authorization: Bearer`)
   * @param {Array<string|object>} [options.models] known models (ids or DEFAULT_MODELS-like objects)
   * @param {boolean} [options.anyModel] accept every model id
   * @param {boolean} [options.strictTurns] refuse consecutive same-role turns (default true)
   * @param {number} [options.minCacheTokens] prompt-caching minimum (default 1024)
   * @param {number} [options.maxRequestBytes] 413 above it (default 32 MiB)
   */
  constructor(options = {}) {
    this.apiKey = options.apiKey ?? DEFAULT_API_KEY;
    this.models = (options.models ?? DEFAULT_MODELS).map((m) => (typeof m === 'string'
      ? { id: m, display_name: m, created_at: '2025-01-01T00:00:00Z', max_output: 64000 } : { ...m }));
    this.anyModel = options.anyModel ?? false;
    this.strictTurns = options.strictTurns ?? true;
    this.minCacheTokens = options.minCacheTokens ?? DEFAULT_MIN_CACHE_TOKENS;
    this.maxRequestBytes = options.maxRequestBytes ?? MAX_REQUEST_BYTES;
    this.host = options.host ?? '127.0.0.1';
    this.requests = [];
    this.cache = new Map(); // prefix hash → expiry (ms)
    this.waiters = new Set();
    ({ server: this.server, sockets: this.sockets } = createMockServer(http, (req, res) => this.#handle(req, res)));
  }

  async start(port = 0) {
    await listenServer(this.server, port, this.host);
    return this.port;
  }

  get port() { return this.server.address().port; }
  /** The SDK's `baseURL` and the provider's `base_url`: no `/v1` (the client appends it). */
  get baseUrl() { return `http://${this.host}:${this.port}`; }
  get url() { return this.baseUrl; }

  async stop() {
    for (const w of this.waiters) w.reject(new Error('mock stopped'));
    this.waiters.clear();
    await closeServer(this.server, this.sockets);
  }

  clearRequests() { this.requests = []; }
  clearCache() { this.cache.clear(); }
  recorded() { return this.requests.map((r) => ({ ...r })); }

  /** Resolves once `predicate(recorded())` holds; rejects after `timeoutMs`. */
  waitFor(predicate, timeoutMs = 5_000, what = 'condition') {
    return new Promise((resolve, reject) => {
      const w = { reject };
      w.check = () => {
        if (!predicate(this.recorded())) return;
        clearTimeout(w.timer);
        this.waiters.delete(w);
        resolve(this.recorded());
      };
      w.timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`anthropic mock: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(w);
      w.check();
    });
  }

  #notify() { for (const w of [...this.waiters]) w.check(); }

  async #handle(req, res) {
    const url = new URL(req.url, 'http://mock');
    if (url.pathname.startsWith(ADMIN_PREFIX)) return this.#admin(req, res, url);
    const rec = {
      seq: this.requests.length + 1, method: req.method, path: req.url, connection_id: req.socket.mockConnectionId,
      headers: redactHeaders(req.headers), api_key_via: null, api_key_ok: false,
      body_text: '', body: null, received_at_ms: Date.now(), status: null, response_request_id: null,
      events_sent: 0, completed: false, closed_early: false,
    };
    this.requests.push(rec);
    res.on('close', () => { if (!res.writableFinished) rec.closed_early = true; this.#notify(); });
    res.on('finish', () => { rec.completed = true; this.#notify(); });
    rec.response_request_id = requestId();
    try {
      const raw = await this.#readBody(req);
      rec.body_text = raw === null ? '' : raw.toString('utf8');
      this.#checkAuth(req, rec);
      if (raw === null) throw new ApiError(413, FORCED_MESSAGES[413]);
      await this.#route(req, res, url, rec);
    } catch (err) {
      if (err instanceof ApiError) this.#sendError(res, rec, err);
      else if (!res.headersSent) this.#sendError(res, rec, new ApiError(500, `mock failure: ${err.message}`));
      else res.destroy();
    }
  }

  /** The body, or null when it exceeds maxRequestBytes (the rest is read and dropped). */
  #readBody(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      let size = 0;
      req.on('data', (c) => { size += c.length; if (size <= this.maxRequestBytes) chunks.push(c); });
      req.on('end', () => resolve(size > this.maxRequestBytes ? null : Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  #admin(req, res, url) {
    if (url.pathname === '/__mock/cache' && req.method === 'DELETE') {
      this.clearCache();
      res.writeHead(204, { 'content-length': '0' });
      return res.end();
    }
    return serveRecordAdmin(req, res, url, this,
      { type: 'error', error: { type: 'not_found_error', message: `no mock admin route ${req.method} ${url.pathname}` } });
  }

  #headers(rec, extra = {}) {
    return {
      'request-id': rec.response_request_id,
      'anthropic-organization-id': '00000000-0000-4000-8000-000000000000',
      'anthropic-ratelimit-requests-limit': '4000',
      'anthropic-ratelimit-requests-remaining': '3999',
      'anthropic-ratelimit-requests-reset': new Date(Date.now() + 60_000).toISOString().replace(/\.\d+Z$/, 'Z'),
      ...extra,
    };
  }

  #sendJson(res, rec, status, obj, extra = {}) {
    if (res.destroyed) return;
    const text = JSON.stringify(obj);
    rec.status = status;
    res.writeHead(status, this.#headers(rec, { 'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)), ...extra }));
    res.end(text);
  }

  #sendError(res, rec, err) {
    this.#sendJson(res, rec, err.status, { type: 'error', error: { type: err.type, message: err.message },
      request_id: rec.response_request_id }, { ...(err.status === 529 ? { 'x-should-retry': 'true' } : {}), ...err.headers });
  }

  #checkAuth(req, rec) {
    const key = req.headers['x-api-key'];
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    rec.api_key_via = key !== undefined ? 'x-api-key' : bearer !== undefined ? 'bearer' : null;
    rec.api_key_ok = (key ?? bearer) === this.apiKey;
    if (rec.api_key_via === null) throw new ApiError(401, 'x-api-key header is required');
    if (!rec.api_key_ok) throw new ApiError(401, 'invalid x-api-key');
    const version = req.headers['anthropic-version'];
    if (version === undefined) throw invalid('anthropic-version: header is required');
    if (!ANTHROPIC_VERSION_RE.test(version) || version < '2023-01-01') throw invalid(`anthropic-version: '${version}' is not a valid version`);
  }

  #model(id) {
    const m = this.models.find((x) => x.id === id);
    if (m) return m;
    if (this.anyModel) return { id, display_name: id, created_at: '2025-01-01T00:00:00Z', max_output: 64000 };
    throw new ApiError(404, `model: ${id}`);
  }

  async #route(req, res, url, rec) {
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /v1/models') return this.#listModels(res, rec, url.searchParams);
    const one = /^GET \/v1\/models\/([^/]+)$/.exec(route);
    if (one) {
      const { max_output: _m, ...m } = this.#model(decodeURIComponent(one[1]));
      return this.#sendJson(res, rec, 200, { type: 'model', ...m });
    }
    if (route !== 'POST /v1/messages' && route !== 'POST /v1/messages/count_tokens') throw new ApiError(404, 'Not Found');
    let body;
    try {
      body = JSON.parse(rec.body_text);
    } catch (e) {
      throw invalid(`There was an error parsing the body of your request: ${e.message}`);
    }
    rec.body = body;
    if (!isObj(body)) throw invalid('Input should be a valid dictionary or object');
    const forCount = url.pathname.endsWith('/count_tokens');
    const model = body.model === undefined || typeof body.model !== 'string' ? undefined : this.models.find((m) => m.id === body.model);
    const checked = validateMessagesBody(body, { forCount, strictTurns: this.strictTurns, maxOutput: model?.max_output,
      betas: parseBetas(req.headers['anthropic-beta']) });
    this.#model(body.model);
    if (forCount) return this.#sendJson(res, rec, 200, { input_tokens: countInputTokens(body) });
    let d;
    try {
      d = parseDirectives(lastUserText(body.messages));
    } catch (e) {
      throw invalid(e.message);
    }
    if (d.delay_ms) await sleep(d.delay_ms);
    if (res.destroyed) return undefined;
    if (d.drop) return res.socket?.destroy();
    if (d.status !== undefined && d.status !== 200) throw forcedError(d, body.model);
    const plan = this.#plan(body, d, checked);
    if (body.stream !== true) return this.#sendJson(res, rec, 200, messageBody(plan));
    return this.#stream(res, rec, plan, d);
  }

  #listModels(res, rec, q) {
    const limit = q.has('limit') ? Number(q.get('limit')) : 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalid('limit: Input should be between 1 and 1000');
    let list = this.models;
    if (q.has('after_id')) list = list.slice(list.findIndex((m) => m.id === q.get('after_id')) + 1);
    else if (q.has('before_id')) list = list.slice(0, Math.max(0, list.findIndex((m) => m.id === q.get('before_id'))));
    const page = q.has('before_id') ? list.slice(-limit) : list.slice(0, limit);
    const hasMore = q.has('before_id') ? list.length > page.length : list.length > limit;
    this.#sendJson(res, rec, 200, {
      data: page.map(({ max_output: _m, ...m }) => ({ type: 'model', ...m })),
      has_more: hasMore, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null,
    });
  }

  #plan(body, d, checked) {
    return planMessage(body, d, checked, cacheUsage(this.cache, body, this.minCacheTokens));
  }

  async #stream(res, rec, plan, d) {
    rec.status = 200;
    res.writeHead(200, this.#headers(rec, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }));
    res.flushHeaders();
    return writeMessageStream(res, plan, d, (text) => this.#write(res, rec, text));
  }

  #write(res, rec, text) {
    return new Promise((resolve) => res.write(text, (err) => {
      if (!err) rec.events_sent++;
      resolve(!err);
    }));
  }
}

// ---------------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const opts = { port: 0 };
  const flags = { '--port': (v) => { opts.port = Number(v); }, '--host': (v) => { opts.host = v; },
    '--api-key': (v) => { opts.apiKey = v; }, '--models': (v) => { opts.models = v.split(',').filter(Boolean); },
    '--min-cache-tokens': (v) => { opts.minCacheTokens = Number(v); } };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--any-model') opts.anyModel = true;
    else if (flags[argv[i]] && i + 1 < argv.length) flags[argv[i]](argv[++i]);
    else throw new Error(`bad argument ${argv[i]}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('bad --port');
  return opts;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`anthropic_mock: ${e.message}\nusage: node anthropic_mock.mjs --port N [--host H] [--api-key K] [--models a,b] [--any-model] [--min-cache-tokens N]\n`);
    process.exit(2);
  }
  const mock = new AnthropicMock(opts);
  await mock.start(opts.port);
  process.stdout.write(`${JSON.stringify({ event: 'listening', host: mock.host, port: mock.port, base_url: mock.baseUrl, api_key: mock.apiKey })}\n`);
  const shutdown = () => mock.stop().then(() => process.exit(0));
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
