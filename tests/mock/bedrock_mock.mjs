// A mock AWS Bedrock Runtime upstream: the Converse and ConverseStream operations, following
// AWS's documented wire format (Bedrock API Reference: Converse, ConverseStream,
// ConverseStreamOutput, TokenUsage, common errors; the `application/vnd.amazon.eventstream`
// encoding), with AWS Signature Version 4 checked on every request.
//
// Importable:   import { BedrockMock } from './bedrock_mock.mjs';
//               const mock = new BedrockMock(); await mock.start(); mock.url; await mock.stop();
// Runnable:     node tests/mock/bedrock_mock.mjs --port N [--host 127.0.0.1] [--region R]
//                                                 [--models a,b] [--any-model]
//
// It serves HTTP/1.1 and cleartext HTTP/2 (prior knowledge, what the AWS SDK for JavaScript's
// default handler speaks) on one port. Tests drive it with directives written in the last user
// message, e.g. "[mock:error=ThrottlingException]"; see README.md beside this file.
// Dependencies: Node.js 20 only (SigV4, CRC32 and the event-stream encoder are written here).

import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import crypto from 'node:crypto';
import { sleep, readBody, directiveParser, runMockCli, commaList, RecordWaiters, listenServer, closeServer } from './mock_util.mjs';

export const DEFAULT_REGION = 'us-east-1';
export const SERVICE = 'bedrock';
/** Long-term credentials (no session token) and temporary ones (with one). */
export const DEFAULT_CREDENTIALS = Object.freeze([
  Object.freeze({ accessKeyId: 'AKIAMOCKBEDROCK00001', secretAccessKey: 'mock/Bedrock+Secret/0123456789abcdefEXAMPLE' }),
  Object.freeze({ accessKeyId: 'ASIAMOCKBEDROCK00002', secretAccessKey: 'mock/Bedrock+Temporary/0123456789abcdefEXAMPLE',
    sessionToken: 'IQoJb3JpZ2luX2VjEMOCK//session/token+0123456789abcdef==' }),
]);
/** A Bedrock API key, accepted as `Authorization: Bearer <key>`. */
export const DEFAULT_API_KEY = 'ABSKbW9jay1iZWRyb2NrLWFwaS1rZXk6MDEyMzQ1Njc4OWFiY2RlZg==';
export const DEFAULT_MODELS = Object.freeze([
  'us.anthropic.claude-sonnet-4-20250514-v1:0',
  'anthropic.claude-sonnet-4-20250514-v1:0',
  'anthropic.claude-3-5-haiku-20241022-v1:0',
  'anthropic.claude-3-haiku-20240307-v1:0',
  'amazon.nova-lite-v1:0',
  'amazon.nova-pro-v1:0',
  'meta.llama3-1-8b-instruct-v1:0',
  'mistral.mistral-large-2407-v1:0',
]);
export const DEFAULT_REPLY_PIECES = Object.freeze(['Hello', '!', ' How', ' can', ' I', ' help', ' you', ' today', '?']);
export const DEFAULT_REPLY = DEFAULT_REPLY_PIECES.join('');
export const DEFAULT_REASONING = 'The user greets me. I should answer politely and offer help.';
/** Maximum allowed distance between x-amz-date and the mock's clock (AWS: 5 minutes). */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;
/** Tokens counted for one image block. */
export const IMAGE_TOKENS = 100;
const MAX_WAIT_MS = 10_000;
const ADMIN_PREFIX = '/__mock/';

// ---------------------------------------------------------------------------------------------
// CRC32 (IEEE 802.3, the "GZIP CRC32" the event-stream encoding uses)

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32 of `buf`, continuing from `crc` (0 to start). */
export function crc32(buf, crc = 0) {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Event-stream encoding (application/vnd.amazon.eventstream)
//
// Frame: total length (u32 BE) | headers length (u32 BE) | prelude CRC32 (of the 8 bytes
// before) | headers | payload | message CRC32 (of every byte before it). A header: name length
// (u8) | name | type (u8) | value. Types: 0 true, 1 false, 2 byte, 3 short, 4 int, 5 long
// (i64), 6 byte array (u16 length), 7 string (u16 length), 8 timestamp (i64 ms), 9 uuid (16).

export const HEADER_TYPES = Object.freeze({ true: 0, false: 1, byte: 2, short: 3, int: 4, long: 5,
  bytes: 6, string: 7, timestamp: 8, uuid: 9 });

function encodeHeader({ name, type, value }) {
  const nameBuf = Buffer.from(name, 'utf8');
  if (nameBuf.length > 255) throw new Error(`header name too long: ${name}`);
  let v;
  switch (type) {
    case 0: case 1: v = Buffer.alloc(0); break;
    case 2: v = Buffer.alloc(1); v.writeInt8(value); break;
    case 3: v = Buffer.alloc(2); v.writeInt16BE(value); break;
    case 4: v = Buffer.alloc(4); v.writeInt32BE(value); break;
    case 5: case 8: v = Buffer.alloc(8); v.writeBigInt64BE(BigInt(value)); break;
    case 6: case 7: {
      const b = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
      if (b.length > 0xffff) throw new Error('header value too long');
      v = Buffer.alloc(2 + b.length);
      v.writeUInt16BE(b.length);
      b.copy(v, 2);
      break;
    }
    case 9: v = Buffer.from(value); if (v.length !== 16) throw new Error('uuid needs 16 bytes'); break;
    default: throw new Error(`unknown header type ${type}`);
  }
  return Buffer.concat([Buffer.from([nameBuf.length]), nameBuf, Buffer.from([type]), v]);
}

/**
 * Encodes one event-stream message. `headers`: [{name, type, value}] (type from HEADER_TYPES;
 * value a string or Buffer for 6/7, a number or bigint for 2–5 and 8, 16 bytes for 9) or an
 * object of string headers. `payload`: Buffer or string.
 */
export function encodeFrame(headers, payload = Buffer.alloc(0)) {
  const list = Array.isArray(headers) ? headers
    : Object.entries(headers).map(([name, value]) => ({ name, type: 7, value }));
  const h = Buffer.concat(list.map(encodeHeader));
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const total = 12 + h.length + p.length + 4;
  const out = Buffer.alloc(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(h.length, 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  h.copy(out, 12);
  p.copy(out, 12 + h.length);
  out.writeUInt32BE(crc32(out.subarray(0, total - 4)), total - 4);
  return out;
}

function decodeHeaders(buf) {
  const headers = [];
  let i = 0;
  const need = (n) => { if (i + n > buf.length) throw new Error('Header runs past the headers section'); };
  while (i < buf.length) {
    need(1);
    const nameLen = buf[i++];
    if (nameLen === 0) throw new Error('Empty header name');
    need(nameLen + 1);
    const name = buf.toString('utf8', i, i + nameLen);
    i += nameLen;
    const type = buf[i++];
    let value;
    switch (type) {
      case 0: value = true; break;
      case 1: value = false; break;
      case 2: need(1); value = buf.readInt8(i); i += 1; break;
      case 3: need(2); value = buf.readInt16BE(i); i += 2; break;
      case 4: need(4); value = buf.readInt32BE(i); i += 4; break;
      case 5: case 8: need(8); value = buf.readBigInt64BE(i); i += 8; break;
      case 6: case 7: {
        need(2);
        const len = buf.readUInt16BE(i);
        i += 2;
        need(len);
        value = Buffer.from(buf.subarray(i, i + len));
        i += len;
        break;
      }
      case 9: need(16); value = Buffer.from(buf.subarray(i, i + 16)); i += 16; break;
      default: throw new Error(`Unknown header type ${type}`);
    }
    headers.push({ name, type, value });
  }
  return headers;
}

/**
 * An incremental event-stream decoder for tests: push() any slice of bytes, get back the
 * complete messages `{headers: [{name,type,value}], headerMap, payload, totalLength,
 * headersLength, preludeCrc, messageCrc}`. Throws on a bad prelude CRC ("Prelude checksum
 * mismatch"), a bad message CRC ("Message checksum mismatch") or malformed headers.
 */
export class EventStreamDecoder {
  constructor() { this.buf = Buffer.alloc(0); }

  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out = [];
    while (this.buf.length >= 12) {
      const total = this.buf.readUInt32BE(0);
      const headersLength = this.buf.readUInt32BE(4);
      const preludeCrc = this.buf.readUInt32BE(8);
      if (crc32(this.buf.subarray(0, 8)) !== preludeCrc) throw new Error('Prelude checksum mismatch');
      if (total < 16 || headersLength > total - 16) throw new Error('Invalid frame lengths');
      if (this.buf.length < total) break;
      const frame = this.buf.subarray(0, total);
      const messageCrc = frame.readUInt32BE(total - 4);
      if (crc32(frame.subarray(0, total - 4)) !== messageCrc) throw new Error('Message checksum mismatch');
      const headers = decodeHeaders(frame.subarray(12, 12 + headersLength));
      const headerMap = {};
      for (const h of headers) headerMap[h.name] = h.type === 7 ? h.value.toString('utf8') : h.value;
      out.push({ headers, headerMap, payload: Buffer.from(frame.subarray(12 + headersLength, total - 4)),
        totalLength: total, headersLength, preludeCrc, messageCrc });
      this.buf = this.buf.subarray(total);
    }
    return out;
  }

  /** Bytes of an incomplete message left over (a cut stream leaves some). */
  get pending() { return this.buf.length; }
}

/** Decodes a whole buffer of frames (throws on a trailing partial frame). */
export function decodeFrames(buf) {
  const d = new EventStreamDecoder();
  const msgs = d.push(buf);
  if (d.pending) throw new Error(`${d.pending} trailing bytes of an incomplete frame`);
  return msgs;
}

/** An `event` frame as Bedrock sends it: JSON payload, :event-type header. */
export function eventFrame(eventType, body) {
  return encodeFrame([
    { name: ':event-type', type: 7, value: eventType },
    { name: ':content-type', type: 7, value: 'application/json' },
    { name: ':message-type', type: 7, value: 'event' },
  ], JSON.stringify(body));
}

/** An `exception` frame (`exceptionType` is the lower-camel union member, e.g. throttlingException). */
export function exceptionFrame(exceptionType, body) {
  return encodeFrame([
    { name: ':exception-type', type: 7, value: exceptionType },
    { name: ':content-type', type: 7, value: 'application/json' },
    { name: ':message-type', type: 7, value: 'exception' },
  ], JSON.stringify(body));
}

// ---------------------------------------------------------------------------------------------
// Signature Version 4

const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ is %XX (upper hex). */
export function uriEncode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}

/**
 * The canonical URI AWS computes for every service but S3: the path as received (still
 * percent-encoded), dot segments and empty segments removed (`normalize`), then each segment
 * URI-encoded once more. So `/model/a%3A0/converse` signs as `/model/a%253A0/converse`.
 */
export function canonicalUri(rawPath, normalize = true) {
  let segs = rawPath.split('/');
  if (normalize) {
    const out = [];
    for (const s of segs.slice(1)) {
      if (s === '' || s === '.') continue;
      if (s === '..') out.pop();
      else out.push(s);
    }
    const trailing = out.length > 0 && rawPath.endsWith('/');
    return '/' + out.map(uriEncode).join('/') + (trailing ? '/' : '');
  }
  segs = segs.map(uriEncode);
  return segs.join('/') || '/';
}

export function canonicalQuery(rawQuery) {
  if (!rawQuery) return '';
  const pairs = rawQuery.split('&').filter((p) => p !== '').map((p) => {
    const eq = p.indexOf('=');
    const k = eq < 0 ? p : p.slice(0, eq);
    const v = eq < 0 ? '' : p.slice(eq + 1);
    return [uriEncode(safeDecode(k.replace(/\+/g, '%20'))), uriEncode(safeDecode(v.replace(/\+/g, '%20')))];
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`, or null. */
export function parseAuthorization(value) {
  const m = /^AWS4-HMAC-SHA256\s+(.*)$/s.exec(value ?? '');
  if (!m) return null;
  const parts = {};
  for (const p of m[1].split(',')) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    parts[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  if (!parts.Credential || !parts.SignedHeaders || !parts.Signature) return null;
  const cred = parts.Credential.split('/');
  if (cred.length !== 5 || cred[4] !== 'aws4_request') return null;
  return {
    accessKeyId: cred[0], date: cred[1], region: cred[2], service: cred[3],
    scope: cred.slice(1).join('/'),
    signedHeaders: parts.SignedHeaders.split(';'),
    signedHeadersText: parts.SignedHeaders,
    signature: parts.Signature,
  };
}

const trimValue = (v) => v.trim().replace(/\s+/g, ' ');

/**
 * The canonical request, string to sign and expected signature. `headerPairs`: [[name, value]]
 * as received (repeated names allowed; their values are joined with ',').
 */
export function sigv4Expected({ method, rawPath, rawQuery = '', headerPairs, payloadHash, auth, amzDate,
  secretAccessKey, normalize = true }) {
  const values = new Map();
  for (const [n, v] of headerPairs) {
    const k = n.toLowerCase();
    if (!values.has(k)) values.set(k, []);
    values.get(k).push(trimValue(String(v)));
  }
  const missing = auth.signedHeaders.filter((h) => !values.has(h));
  const canonicalHeaders = auth.signedHeaders.map((h) => `${h}:${(values.get(h) ?? []).join(',')}\n`).join('');
  const canonicalRequest = [method, canonicalUri(rawPath, normalize), canonicalQuery(rawQuery), canonicalHeaders,
    auth.signedHeadersText, payloadHash].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, auth.scope, sha256hex(canonicalRequest)].join('\n');
  let key = hmac(`AWS4${secretAccessKey}`, auth.date);
  key = hmac(key, auth.region);
  key = hmac(key, auth.service);
  key = hmac(key, 'aws4_request');
  const signature = crypto.createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  return { canonicalRequest, stringToSign, signature, missing };
}

function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s ?? '');
  if (!m) return null;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
}

// ---------------------------------------------------------------------------------------------
// Errors (restJson1: x-amzn-ErrorType header, body {"message": …})

/** HTTP statuses of the Converse / ConverseStream errors (API Reference, "Errors"). */
export const ERROR_STATUS = Object.freeze({
  ValidationException: 400,
  AccessDeniedException: 403,
  ResourceNotFoundException: 404,
  ModelTimeoutException: 408,
  ModelErrorException: 424,
  ThrottlingException: 429,
  ModelNotReadyException: 429,
  ServiceQuotaExceededException: 400,
  InternalServerException: 500,
  ServiceUnavailableException: 503,
  // Authentication (common errors), answered before the operation runs.
  InvalidSignatureException: 403,
  UnrecognizedClientException: 403,
  MissingAuthenticationTokenException: 403,
  IncompleteSignatureException: 400,
  ExpiredTokenException: 403,
  UnknownOperationException: 404,
});

const ERROR_MESSAGES = Object.freeze({
  ValidationException: 'The input fails to satisfy the constraints specified by Amazon Bedrock (forced by mock).',
  AccessDeniedException: "You don't have access to the model with the specified model ID.",
  ResourceNotFoundException: 'The provided model identifier is invalid.',
  ModelTimeoutException: 'Model has timed out in processing the request. Try your request again.',
  ModelErrorException: 'The model returned an error (forced by mock).',
  ThrottlingException: 'Too many requests, please wait before trying again.',
  ModelNotReadyException: 'Model is not ready to serve inference requests. The AWS SDK will automatically retry the operation up to 5 times.',
  ServiceQuotaExceededException: 'Your request exceeds the service quota for your account.',
  InternalServerException: 'The server encountered an internal error. Try your request again.',
  ServiceUnavailableException: 'Bedrock is unable to process your request.',
});

/** Exceptions a ConverseStream can carry in an exception frame (`:exception-type`). */
export const STREAM_EXCEPTIONS = Object.freeze({
  internalServerException: 'InternalServerException',
  modelStreamErrorException: 'ModelStreamErrorException',
  validationException: 'ValidationException',
  throttlingException: 'ThrottlingException',
  serviceUnavailableException: 'ServiceUnavailableException',
});

class AwsError extends Error {
  constructor(type, message, status = ERROR_STATUS[type] ?? 400, extra = {}) {
    super(message);
    this.type = type;
    this.status = status;
    this.extra = extra;
  }
}

const validation = (message) => new AwsError('ValidationException', message);

// ---------------------------------------------------------------------------------------------
// Directives

const INT_DIRECTIVES = new Set(['delay_ms', 'chunk_delay_ms', 'drop_after_frames', 'split_bytes', 'chunks',
  'error_after_frames', 'bad_crc_frame', 'bad_prelude_crc_frame', 'input_tokens', 'output_tokens',
  'cache_read_tokens', 'cache_write_tokens', 'latency_ms']);
const FLAG_DIRECTIVES = new Set(['tool_use', 'reasoning', 'drop', 'coalesce', 'no_padding']);
const STRING_DIRECTIVES = new Set(['error', 'stream_error', 'reply', 'tool', 'stop_reason']);

/** Parses every `[mock:name=value]` / `[mock:flag]` token of `text`. Unknown names throw. */
export const parseDirectives = directiveParser(INT_DIRECTIVES, FLAG_DIRECTIVES, STRING_DIRECTIVES);

function lastUserText(messages) {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role === 'user') {
      return messages[i].content.filter((b) => typeof b.text === 'string').map((b) => b.text).join('\n');
    }
  }
  return '';
}

// ---------------------------------------------------------------------------------------------
// Request validation (Converse request syntax; ContentBlock, SystemContentBlock, ToolConfiguration)

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const IMAGE_FORMATS = ['png', 'jpeg', 'gif', 'webp'];
const DOC_FORMATS = ['pdf', 'csv', 'doc', 'docx', 'xls', 'xlsx', 'html', 'txt', 'md'];
const TOOL_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;

function oneMember(v, where, allowed) {
  if (!isObj(v)) throw validation(`${where} must be an object.`);
  const keys = Object.keys(v).filter((k) => v[k] !== undefined && v[k] !== null);
  if (keys.length !== 1) {
    throw validation(`${where} must set exactly one of the union members ${allowed.join(', ')}; it sets ${keys.length}.`);
  }
  if (!allowed.includes(keys[0])) throw validation(`${where}: unknown member '${keys[0]}'.`);
  return keys[0];
}

function checkBytes(v, where) {
  if (typeof v !== 'string' || v.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
    throw validation(`${where}.bytes must be non-empty base64.`);
  }
}

function checkImage(img, where) {
  if (!isObj(img)) throw validation(`${where} must be an object.`);
  if (!IMAGE_FORMATS.includes(img.format)) {
    throw validation(`${where}.format must be one of ${IMAGE_FORMATS.join(', ')}.`);
  }
  if (!isObj(img.source)) throw validation(`${where}.source is required.`);
  const m = oneMember(img.source, `${where}.source`, ['bytes', 's3Location']);
  if (m === 'bytes') checkBytes(img.source.bytes, `${where}.source`);
}

function checkDocument(doc, where) {
  if (!isObj(doc) || typeof doc.name !== 'string' || !isObj(doc.source)) {
    throw validation(`${where} needs name and source.`);
  }
  if (doc.format !== undefined && !DOC_FORMATS.includes(doc.format)) {
    throw validation(`${where}.format must be one of ${DOC_FORMATS.join(', ')}.`);
  }
}

function checkCachePoint(cp, where) {
  if (!isObj(cp) || cp.type !== 'default') throw validation(`${where}.type must be 'default'.`);
}

function checkContentBlock(b, where, role) {
  const m = oneMember(b, where, ['text', 'image', 'document', 'video', 'toolUse', 'toolResult', 'guardContent',
    'cachePoint', 'reasoningContent', 'citationsContent']);
  switch (m) {
    case 'text':
      if (typeof b.text !== 'string') throw validation(`${where}.text must be a string.`);
      if (b.text.trim() === '') throw validation('The text field in the ContentBlock object is blank. Add text to the text field, and try again.');
      break;
    case 'image': checkImage(b.image, `${where}.image`); break;
    case 'document': checkDocument(b.document, `${where}.document`); break;
    case 'toolUse':
      if (role !== 'assistant') throw validation(`${where}: toolUse blocks are only allowed in assistant messages.`);
      if (!isObj(b.toolUse) || typeof b.toolUse.toolUseId !== 'string' || typeof b.toolUse.name !== 'string' ||
          b.toolUse.input === undefined) {
        throw validation(`${where}.toolUse needs toolUseId, name and input.`);
      }
      break;
    case 'toolResult': {
      if (role !== 'user') throw validation(`${where}: toolResult blocks are only allowed in user messages.`);
      const r = b.toolResult;
      if (!isObj(r) || typeof r.toolUseId !== 'string' || !Array.isArray(r.content)) {
        throw validation(`${where}.toolResult needs toolUseId and content.`);
      }
      if (r.status !== undefined && r.status !== 'success' && r.status !== 'error') {
        throw validation(`${where}.toolResult.status must be success or error.`);
      }
      r.content.forEach((c, i) => {
        const k = oneMember(c, `${where}.toolResult.content[${i}]`, ['json', 'text', 'image', 'document', 'video']);
        if (k === 'text' && typeof c.text !== 'string') throw validation(`${where}.toolResult.content[${i}].text must be a string.`);
        if (k === 'image') checkImage(c.image, `${where}.toolResult.content[${i}].image`);
      });
      break;
    }
    case 'cachePoint': checkCachePoint(b.cachePoint, `${where}.cachePoint`); break;
    case 'reasoningContent': {
      const k = oneMember(b.reasoningContent, `${where}.reasoningContent`, ['reasoningText', 'redactedContent']);
      if (k === 'reasoningText' && (!isObj(b.reasoningContent.reasoningText) ||
          typeof b.reasoningContent.reasoningText.text !== 'string')) {
        throw validation(`${where}.reasoningContent.reasoningText.text must be a string.`);
      }
      if (k === 'redactedContent') checkBytes(b.reasoningContent.redactedContent, `${where}.reasoningContent.redactedContent`);
      break;
    }
    default:
      break;
  }
  return m;
}

function checkNumber(v, where, lo, hi, integer = false) {
  if (v === undefined) return;
  if (typeof v !== 'number' || Number.isNaN(v) || (integer && !Number.isInteger(v)) || v < lo || v > hi) {
    throw validation(`${where} must be ${integer ? 'an integer' : 'a number'} between ${lo} and ${hi}.`);
  }
}

/** Validates a Converse request body; returns the set of tool names. Throws ValidationException. */
export function validateConverse(body) {
  if (!isObj(body)) throw validation('Malformed input request, please reformat your input and try again.');
  const { messages } = body;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw validation('A conversation must start with a user message. Try again with a conversation that starts with a user message.');
  }
  let usesTools = false;
  messages.forEach((m, i) => {
    if (!isObj(m)) throw validation(`messages.${i} must be an object.`);
    if (m.role !== 'user' && m.role !== 'assistant') {
      throw validation(`1 validation error detected: Value '${m.role}' at 'messages.${i + 1}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]`);
    }
    if (i === 0 && m.role !== 'user') {
      throw validation('A conversation must start with a user message. Try again with a conversation that starts with a user message.');
    }
    if (i > 0 && messages[i - 1].role === m.role) {
      throw validation('A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.');
    }
    if (!Array.isArray(m.content) || m.content.length === 0) {
      throw validation(`messages.${i}.content must be a non-empty array of ContentBlock.`);
    }
    m.content.forEach((b, j) => {
      const k = checkContentBlock(b, `messages.${i}.content.${j}`, m.role);
      if (k === 'toolUse' || k === 'toolResult') usesTools = true;
    });
  });
  if (body.system !== undefined) {
    if (!Array.isArray(body.system)) throw validation('system must be an array of SystemContentBlock.');
    body.system.forEach((b, i) => {
      const k = oneMember(b, `system.${i}`, ['text', 'cachePoint', 'guardContent']);
      if (k === 'text' && (typeof b.text !== 'string' || b.text === '')) throw validation(`system.${i}.text must be a non-empty string.`);
      if (k === 'cachePoint') checkCachePoint(b.cachePoint, `system.${i}.cachePoint`);
    });
  }
  const ic = body.inferenceConfig;
  if (ic !== undefined) {
    if (!isObj(ic)) throw validation('inferenceConfig must be an object.');
    checkNumber(ic.maxTokens, 'inferenceConfig.maxTokens', 1, 1_000_000, true);
    checkNumber(ic.temperature, 'inferenceConfig.temperature', 0, 1);
    checkNumber(ic.topP, 'inferenceConfig.topP', 0, 1);
    if (ic.stopSequences !== undefined && (!Array.isArray(ic.stopSequences) || ic.stopSequences.length > 2500 ||
        ic.stopSequences.some((s) => typeof s !== 'string' || s === ''))) {
      throw validation('inferenceConfig.stopSequences must be an array of non-empty strings.');
    }
  }
  const names = new Set();
  const tc = body.toolConfig;
  if (tc !== undefined) {
    if (!isObj(tc) || !Array.isArray(tc.tools) || tc.tools.length === 0) {
      throw validation('toolConfig.tools must be a non-empty array of Tool.');
    }
    tc.tools.forEach((t, i) => {
      const k = oneMember(t, `toolConfig.tools.${i}`, ['toolSpec', 'cachePoint', 'systemTool']);
      if (k === 'cachePoint') { checkCachePoint(t.cachePoint, `toolConfig.tools.${i}.cachePoint`); return; }
      if (k !== 'toolSpec') return;
      const s = t.toolSpec;
      if (typeof s.name !== 'string' || !TOOL_NAME_RE.test(s.name)) {
        throw validation(`toolConfig.tools.${i}.toolSpec.name must match [a-zA-Z0-9_-]{1,64}.`);
      }
      if (s.description !== undefined && (typeof s.description !== 'string' || s.description === '')) {
        throw validation(`toolConfig.tools.${i}.toolSpec.description must be a non-empty string.`);
      }
      if (!isObj(s.inputSchema) || !isObj(s.inputSchema.json)) {
        throw validation(`toolConfig.tools.${i}.toolSpec.inputSchema.json must be a JSON object schema.`);
      }
      if (names.has(s.name)) throw validation(`Tool names must be unique: ${s.name}.`);
      names.add(s.name);
    });
    if (tc.toolChoice !== undefined) {
      const k = oneMember(tc.toolChoice, 'toolConfig.toolChoice', ['auto', 'any', 'tool']);
      if (k === 'tool' && (!isObj(tc.toolChoice.tool) || !names.has(tc.toolChoice.tool.name))) {
        throw validation('toolConfig.toolChoice.tool.name must name one of the tools.');
      }
    }
  } else if (usesTools) {
    throw validation('The toolConfig field must be defined when using toolUse and toolResult content blocks.');
  }
  if (body.additionalModelRequestFields !== undefined && !isObj(body.additionalModelRequestFields)) {
    throw validation('additionalModelRequestFields must be a JSON object.');
  }
  if (body.additionalModelResponseFieldPaths !== undefined &&
      (!Array.isArray(body.additionalModelResponseFieldPaths) ||
        body.additionalModelResponseFieldPaths.some((p) => typeof p !== 'string'))) {
    throw validation('additionalModelResponseFieldPaths must be an array of strings.');
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// Token counting and prompt caching (deterministic)

/** One token per 4 characters, rounded up. */
export function approxTokens(text) {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

function blockTokens(b) {
  if (typeof b.text === 'string') return approxTokens(b.text);
  if (b.image) return IMAGE_TOKENS;
  if (b.document) return approxTokens(JSON.stringify(b.document.source ?? {}));
  if (b.toolUse) return approxTokens(b.toolUse.name + JSON.stringify(b.toolUse.input));
  if (b.toolResult) return b.toolResult.content.reduce((s, c) => s + (c.text !== undefined ? approxTokens(c.text)
    : c.json !== undefined ? approxTokens(JSON.stringify(c.json)) : c.image ? IMAGE_TOKENS : 0), 0);
  if (b.reasoningContent?.reasoningText) return approxTokens(b.reasoningContent.reasoningText.text);
  if (b.toolSpec) {
    const s = b.toolSpec;
    return approxTokens(s.name + (s.description ?? '') + JSON.stringify(s.inputSchema.json));
  }
  return 0;
}

/**
 * Input tokens of a request, walked in the order the prompt is laid out (tools, system,
 * messages): `{total, cachedPrefix, prefixKey}` where cachedPrefix is the count before the last
 * cachePoint and prefixKey a hash of that prefix (null: no cachePoint).
 */
export function promptTokens(body) {
  const items = [...(body.toolConfig?.tools ?? []), ...(body.system ?? []),
    ...body.messages.flatMap((m) => m.content.map((b) => ({ role: m.role, b })))].map((x) => (x.b ? x : { b: x }));
  let total = 0;
  let cachedPrefix = 0;
  let lastCut = -1;
  items.forEach((x, i) => {
    if (x.b.cachePoint) { cachedPrefix = total; lastCut = i; return; }
    total += blockTokens(x.b);
  });
  const prefixKey = lastCut < 0 ? null
    : crypto.createHash('sha256').update(JSON.stringify([body.modelId ?? '', items.slice(0, lastCut)])).digest('hex');
  return { total, cachedPrefix, prefixKey };
}

// ---------------------------------------------------------------------------------------------
// The answer

const PADDING = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function splitPieces(text) {
  return text.match(/\s*\S+/g) ?? (text.length ? [text] : []);
}

function toolInputFor(schema) {
  const input = {};
  const props = isObj(schema?.properties) ? schema.properties : {};
  for (const name of Array.isArray(schema?.required) ? schema.required : []) {
    const t = props[name]?.type;
    if (Array.isArray(props[name]?.enum) && props[name].enum.length) input[name] = props[name].enum[0];
    else input[name] = t === 'number' || t === 'integer' ? 1 : t === 'boolean' ? true : t === 'array' ? []
      : t === 'object' ? {} : 'mock';
  }
  return input;
}

/**
 * Plans the reply: content blocks (each with its stream pieces), stop reason and usage.
 * Each streamed piece counts as one output token.
 */
function plan(body, d, tools, cacheState) {
  const blocks = [];
  const thinking = body.additionalModelRequestFields?.thinking;
  if (d.reasoning || (isObj(thinking) && thinking.type === 'enabled')) {
    const signature = crypto.createHash('sha256').update(JSON.stringify(body.messages)).digest('base64');
    blocks.push({ kind: 'reasoning', pieces: splitPieces(DEFAULT_REASONING), signature });
  }
  const choice = body.toolConfig?.toolChoice;
  const forcedTool = choice?.tool?.name ?? (choice?.any ? [...tools][0] : undefined);
  const toolName = d.tool ?? (d.tool_use || forcedTool ? forcedTool ?? [...tools][0] : undefined);
  let stopReason = 'end_turn';
  if (toolName !== undefined) {
    const spec = body.toolConfig?.tools?.find((t) => t.toolSpec?.name === toolName)?.toolSpec;
    if (!spec) throw validation(`mock: tool ${toolName} is not in toolConfig.`);
    if (!choice?.tool && !choice?.any) blocks.push({ kind: 'text', pieces: splitPieces(`I'll call ${toolName}.`) });
    const input = toolInputFor(spec.inputSchema.json);
    const json = JSON.stringify(input);
    const pieces = [];
    for (let i = 0; i < json.length; i += 8) pieces.push(json.slice(i, i + 8));
    const toolUseId = `tooluse_${crypto.createHash('sha256').update(JSON.stringify([body.messages, toolName]))
      .digest('base64url').slice(0, 22)}`;
    blocks.push({ kind: 'toolUse', toolUseId, name: toolName, input, pieces });
    stopReason = 'tool_use';
  } else {
    let pieces;
    if (d.chunks !== undefined) pieces = Array.from({ length: d.chunks }, (_, i) => (i === 0 ? `tok${i}` : ` tok${i}`));
    else if (d.reply !== undefined) pieces = splitPieces(d.reply);
    else pieces = [...DEFAULT_REPLY_PIECES];
    const stops = body.inferenceConfig?.stopSequences ?? [];
    const text = pieces.join('');
    let cut = -1;
    for (const s of stops) {
      const at = text.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      pieces = splitPieces(text.slice(0, cut));
      stopReason = 'stop_sequence';
    }
    blocks.push({ kind: 'text', pieces });
  }
  // maxTokens: one token per piece, blocks cut (or dropped) where the budget ends.
  const maxTokens = body.inferenceConfig?.maxTokens;
  if (maxTokens !== undefined) {
    let left = maxTokens;
    for (let i = 0; i < blocks.length; i++) {
      if (blocks[i].pieces.length <= left) { left -= blocks[i].pieces.length; continue; }
      if (blocks[i].kind === 'toolUse' || left === 0) blocks.length = i;
      else { blocks[i].pieces = blocks[i].pieces.slice(0, left); blocks.length = i + 1; }
      stopReason = 'max_tokens';
      break;
    }
  }
  if (d.stop_reason !== undefined) stopReason = d.stop_reason;

  const outputTokens = d.output_tokens ?? blocks.reduce((s, b) => s + b.pieces.length, 0);
  const p = promptTokens(body);
  let cacheRead = 0;
  let cacheWrite = 0;
  if (p.prefixKey) {
    if (cacheState.has(p.prefixKey)) cacheRead = p.cachedPrefix;
    else { cacheWrite = p.cachedPrefix; cacheState.add(p.prefixKey); }
  }
  cacheRead = d.cache_read_tokens ?? cacheRead;
  cacheWrite = d.cache_write_tokens ?? cacheWrite;
  const inputTokens = d.input_tokens ?? Math.max(1, p.total - (p.prefixKey ? p.cachedPrefix : 0));
  const usage = { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens + cacheRead + cacheWrite };
  if (p.prefixKey || d.cache_read_tokens !== undefined || d.cache_write_tokens !== undefined) {
    usage.cacheReadInputTokens = cacheRead;
    usage.cacheWriteInputTokens = cacheWrite;
  }
  return { blocks, stopReason, usage, metrics: { latencyMs: d.latency_ms ?? 42 } };
}

function outputContent(pl) {
  return pl.blocks.filter((b) => b.pieces.length > 0 || b.kind === 'toolUse').map((b) => {
    if (b.kind === 'reasoning') {
      return { reasoningContent: { reasoningText: { text: b.pieces.join(''), signature: b.signature } } };
    }
    if (b.kind === 'toolUse') return { toolUse: { toolUseId: b.toolUseId, name: b.name, input: b.input } };
    return { text: b.pieces.join('') };
  });
}

/** The Converse JSON answer for a plan. */
export function converseBody(pl) {
  return {
    output: { message: { role: 'assistant', content: outputContent(pl) } },
    stopReason: pl.stopReason,
    usage: pl.usage,
    metrics: pl.metrics,
  };
}

/** The ConverseStream events `[eventType, payload]` for a plan, in order (payloads without "p"). */
export function streamEvents(pl) {
  const ev = [['messageStart', { role: 'assistant' }]];
  let index = 0;
  for (const b of pl.blocks) {
    if (b.pieces.length === 0 && b.kind !== 'toolUse') continue;
    const i = index++;
    if (b.kind === 'toolUse') {
      ev.push(['contentBlockStart', { contentBlockIndex: i, start: { toolUse: { toolUseId: b.toolUseId, name: b.name } } }]);
      for (const piece of b.pieces) ev.push(['contentBlockDelta', { contentBlockIndex: i, delta: { toolUse: { input: piece } } }]);
    } else if (b.kind === 'reasoning') {
      for (const piece of b.pieces) {
        ev.push(['contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: { text: piece } } }]);
      }
      ev.push(['contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: { signature: b.signature } } }]);
    } else {
      for (const piece of b.pieces) ev.push(['contentBlockDelta', { contentBlockIndex: i, delta: { text: piece } }]);
    }
    ev.push(['contentBlockStop', { contentBlockIndex: i }]);
  }
  ev.push(['messageStop', { stopReason: pl.stopReason }]);
  ev.push(['metadata', { usage: pl.usage, metrics: pl.metrics }]);
  return ev;
}

/** Adds Bedrock's padding member `p` (a filler string real streams carry; clients ignore it). */
function padded(payload, n) {
  return { ...payload, p: PADDING.slice(0, 1 + (n * 7) % PADDING.length) };
}

// ---------------------------------------------------------------------------------------------
// The server

export class BedrockMock {
  /**
   * @param {object} [options]
   * @param {string} [options.region] the region requests must be signed for (default us-east-1)
   * @param {{accessKeyId: string, secretAccessKey: string, sessionToken?: string}[]} [options.credentials]
   *   accepted key pairs; a pair with a sessionToken requires that x-amz-security-token
   * @param {string|null} [options.apiKey] Bedrock API key accepted as Bearer token (null: none)
   * @param {string[]} [options.models] known model ids (others: ResourceNotFoundException)
   * @param {boolean} [options.anyModel] accept every model id
   * @param {() => number} [options.now] the clock (ms) used for the 5-minute skew check
   * @param {string} [options.host]
   */
  constructor(options = {}) {
    this.region = options.region ?? DEFAULT_REGION;
    this.credentials = (options.credentials ?? DEFAULT_CREDENTIALS).map((c) => ({ ...c }));
    this.apiKey = options.apiKey === undefined ? DEFAULT_API_KEY : options.apiKey;
    this.models = [...(options.models ?? DEFAULT_MODELS)];
    this.anyModel = options.anyModel ?? false;
    this.now = options.now ?? Date.now;
    this.host = options.host ?? '127.0.0.1';
    this.requests = [];
    this.seq = 0;
    this.waiters = new RecordWaiters(() => this.recorded());
    this.cache = new Set();
    this.sockets = new Set();
    this.connectionSeq = 0;
    const handler = (req, res) => this.#handle(req, res);
    this.h1 = http.createServer({ keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000, requestTimeout: 0 }, handler);
    this.h2 = http2.createServer({}, handler);
    this.h2.on('sessionError', () => {});
    // One port for both: a connection that opens with the HTTP/2 preface ("PRI * HTTP/2.0")
    // goes to the HTTP/2 server, anything else to the HTTP/1.1 one.
    this.server = net.createServer((sock) => {
      sock.mockConnectionId = ++this.connectionSeq;
      sock.setNoDelay(true);
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
      sock.on('error', () => {});
      sock.once('readable', () => {
        const first = sock.read();
        if (first === null) return;
        sock.unshift(first);
        (first.toString('latin1', 0, 3) === 'PRI' ? this.h2 : this.h1).emit('connection', sock);
      });
    });
  }

  async start(port = 0) {
    await listenServer(this.server, port, this.host);
    return this.port;
  }

  get port() { return this.server.address().port; }

  /** The endpoint a client configures (`endpoint` of the SDK, `base_url` of the gateway). */
  get url() { return `http://${this.host}:${this.port}`; }

  get baseUrl() { return this.url; }

  async stop() {
    this.waiters.rejectAll();
    await closeServer(this.server, this.sockets);
    this.h1.close();
    this.h2.close();
  }

  clearRequests() { this.requests = []; }

  /** Forgets every cached prompt prefix (the next cachePoint request writes again). */
  clearCache() { this.cache.clear(); }

  recorded() { return this.requests.map((r) => ({ ...r })); }

  /** Resolves once `predicate(recorded())` is true; rejects after `timeoutMs`. */
  waitFor(predicate, timeoutMs = 5_000, what = 'condition') {
    return this.waiters.wait(predicate, timeoutMs, what);
  }

  waitForRequests(count, timeoutMs = 5_000) {
    return this.waitFor((rs) => rs.length >= count, timeoutMs, `${count} request(s)`);
  }

  #notify() { this.waiters.notify(); }

  async #handle(req, res) {
    const rawUrl = req.url;
    const q = rawUrl.indexOf('?');
    const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const rawQuery = q < 0 ? '' : rawUrl.slice(q + 1);
    if (rawPath.startsWith(ADMIN_PREFIX)) {
      await this.#admin(req, res, new URL(rawUrl, 'http://mock'));
      return;
    }
    const record = {
      seq: ++this.seq,
      method: req.method,
      path: rawUrl,
      http_version: req.httpVersion,
      connection_id: req.socket?.mockConnectionId ?? null,
      headers: redactHeaders(req.headers),
      body: null,
      body_text: '',
      model_id: null,
      operation: null,
      auth: null,
      signature_verified: false,
      canonical_request: null,
      received_at_ms: Date.now(),
      status: null,
      error_type: null,
      request_id: crypto.randomUUID(),
      events_sent: 0,
      completed: false,
      closed_early: false,
    };
    this.requests.push(record);
    res.on('close', () => {
      if (!res.writableFinished) record.closed_early = true;
      this.#notify();
    });
    res.on('finish', () => { record.completed = true; this.#notify(); });
    let raw;
    try {
      raw = await readBody(req);
    } catch {
      record.closed_early = true;
      this.#notify();
      return;
    }
    record.body_text = raw.toString('utf8');
    try {
      await this.#route(req, res, rawPath, rawQuery, raw, record);
    } catch (err) {
      if (err instanceof AwsError) {
        this.#sendError(res, record, err);
      } else if (!res.headersSent) {
        this.#sendError(res, record, new AwsError('InternalServerException', `mock failure: ${err.message}`));
      } else {
        res.destroy();
      }
    }
    this.#notify();
  }

  async #admin(req, res, url) {
    if (url.pathname === '/__mock/requests' && req.method === 'GET') {
      const min = Number(url.searchParams.get('min') ?? 0);
      const timeout = Math.min(Number(url.searchParams.get('timeout_ms') ?? 0), MAX_WAIT_MS);
      if (min > 0) await this.waitForRequests(min, timeout).catch(() => {});
      const text = JSON.stringify(this.recorded());
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    } else if (url.pathname === '/__mock/requests' && req.method === 'DELETE') {
      this.clearRequests();
      res.writeHead(204);
      res.end();
    } else if (url.pathname === '/__mock/cache' && req.method === 'DELETE') {
      this.clearCache();
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `no mock admin route ${req.method} ${url.pathname}` }));
    }
  }

  #sendError(res, record, err) {
    if (res.destroyed || res.headersSent) return;
    const body = JSON.stringify({ message: err.message, ...err.extra });
    record.status = err.status;
    record.error_type = err.type;
    res.writeHead(err.status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'x-amzn-requestid': record.request_id,
      'x-amzn-errortype': err.type,
    });
    res.end(body);
  }

  /** Authenticates the request (SigV4 or Bedrock API key). Throws an AwsError. */
  #authenticate(req, rawPath, rawQuery, raw, record) {
    const authz = req.headers.authorization;
    if (authz === undefined) {
      record.auth = { scheme: null };
      throw new AwsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
    }
    const bearer = /^Bearer (.+)$/.exec(authz);
    if (bearer) {
      record.auth = { scheme: 'bearer' };
      if (this.apiKey === null || bearer[1] !== this.apiKey) {
        throw new AwsError('UnrecognizedClientException', 'Invalid API Key format: Must start with pre-defined prefix');
      }
      record.signature_verified = true;
      record.auth.verified = true;
      return;
    }
    const auth = parseAuthorization(authz);
    record.auth = { scheme: 'sigv4', access_key_id: auth?.accessKeyId ?? null, verified: false };
    if (!auth) {
      throw new AwsError('IncompleteSignatureException',
        `Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. Authorization=${authz.split(' ')[0]}`);
    }
    record.auth.scope = auth.scope;
    record.auth.signed_headers = auth.signedHeaders;
    const amzDate = req.headers['x-amz-date'];
    const t = parseAmzDate(amzDate);
    if (t === null) {
      throw new AwsError('IncompleteSignatureException', "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
    }
    const cred = this.credentials.find((c) => c.accessKeyId === auth.accessKeyId);
    if (!cred) throw new AwsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    const token = req.headers['x-amz-security-token'];
    if ((cred.sessionToken ?? undefined) !== token) {
      throw new AwsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    }
    if (auth.date !== amzDate.slice(0, 8)) {
      throw new AwsError('InvalidSignatureException', `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.date}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`);
    }
    if (auth.region !== this.region) {
      throw new AwsError('InvalidSignatureException', `Credential should be scoped to a valid region. (expected '${this.region}', got '${auth.region}')`);
    }
    if (auth.service !== SERVICE) {
      throw new AwsError('InvalidSignatureException', `Credential should be scoped to correct service: '${SERVICE}'. `);
    }
    const signedSet = new Set(auth.signedHeaders);
    if (!signedSet.has('host') && !signedSet.has(':authority')) {
      throw new AwsError('InvalidSignatureException', "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    }
    const now = this.now();
    if (t < now - CLOCK_SKEW_MS) {
      throw new AwsError('InvalidSignatureException', `Signature expired: ${amzDate} is now earlier than ${fmtAmzDate(now - CLOCK_SKEW_MS)} (${fmtAmzDate(now)} - 5 min.)`);
    }
    if (t > now + CLOCK_SKEW_MS) {
      throw new AwsError('InvalidSignatureException', `Signature not yet current: ${amzDate} is still later than ${fmtAmzDate(now + CLOCK_SKEW_MS)} (${fmtAmzDate(now)} + 5 min.)`);
    }
    const payloadHash = sha256hex(raw);
    const sent = req.headers['x-amz-content-sha256'];
    // HTTP/2 requests carry :authority; a signature over `host` is checked against it.
    const pairs = headerPairs(req);
    if (!pairs.some(([n]) => n.toLowerCase() === 'host') && req.headers[':authority']) pairs.push(['host', req.headers[':authority']]);
    const exp = sigv4Expected({ method: req.method, rawPath, rawQuery, headerPairs: pairs, payloadHash, auth, amzDate,
      secretAccessKey: cred.secretAccessKey });
    record.canonical_request = exp.canonicalRequest;
    if (sent !== undefined && sent !== payloadHash) {
      throw new AwsError('InvalidSignatureException', 'The provided x-amz-content-sha256 header does not match what was computed.');
    }
    const a = Buffer.from(exp.signature);
    const b = Buffer.from(auth.signature);
    if (exp.missing.length || a.length !== b.length || !crypto.timingSafeEqual(a, b)) {
      throw new AwsError('InvalidSignatureException',
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n' +
        `The Canonical String for this request should have been\n'${exp.canonicalRequest}'\n\n` +
        `The String-to-Sign should have been\n'${exp.stringToSign}'\n`);
    }
    record.signature_verified = true;
    record.auth.verified = true;
  }

  async #route(req, res, rawPath, rawQuery, raw, record) {
    const m = /^\/model\/([^/]+)\/(converse|converse-stream)$/.exec(rawPath);
    if (!m || req.method !== 'POST') {
      throw new AwsError('UnknownOperationException', `Unknown operation ${req.method} ${rawPath}`);
    }
    record.operation = m[2] === 'converse' ? 'Converse' : 'ConverseStream';
    let modelId;
    try {
      modelId = decodeURIComponent(m[1]);
    } catch {
      throw validation('The provided model identifier is invalid.');
    }
    record.model_id = modelId;
    this.#authenticate(req, rawPath, rawQuery, raw, record);
    let body;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new AwsError('ValidationException', 'Malformed input request, please reformat your input and try again.');
    }
    record.body = body;
    const tools = validateConverse(body);
    if (!this.anyModel && !this.models.includes(modelId)) {
      throw new AwsError('ResourceNotFoundException', 'The provided model identifier is invalid.');
    }
    let d;
    try {
      d = parseDirectives(lastUserText(body.messages));
    } catch (e) {
      throw validation(e.message);
    }
    if (d.delay_ms) await sleep(d.delay_ms);
    if (res.destroyed) return;
    if (d.drop) { cut(req, res); return; }
    if (d.error !== undefined) {
      if (!ERROR_STATUS[d.error]) throw validation(`mock: unknown error type ${d.error}`);
      throw new AwsError(d.error, ERROR_MESSAGES[d.error] ?? `${d.error} (forced by mock).`);
    }
    const pl = plan({ ...body, modelId }, d, tools, this.cache);
    if (record.operation === 'Converse') {
      const text = JSON.stringify(converseBody(pl));
      record.status = 200;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)),
        'x-amzn-requestid': record.request_id });
      await new Promise((resolve) => res.end(text, resolve));
      return;
    }
    await this.#stream(req, res, pl, d, record);
  }

  async #stream(req, res, pl, d, record) {
    let frames = streamEvents(pl).map(([type, payload], n) =>
      eventFrame(type, d.no_padding ? payload : padded(payload, n)));
    if (d.stream_error !== undefined) {
      const name = STREAM_EXCEPTIONS[d.stream_error] ? d.stream_error : null;
      if (!name) throw validation(`mock: unknown stream exception ${d.stream_error}`);
      const at = Math.min(d.error_after_frames ?? 3, frames.length);
      const body = name === 'modelStreamErrorException'
        ? { message: 'Model stream error (forced by mock).', originalStatusCode: 500, originalMessage: 'upstream model failed' }
        : { message: ERROR_MESSAGES[STREAM_EXCEPTIONS[name]] };
      frames = [...frames.slice(0, at), exceptionFrame(name, body)];
    }
    for (const [key, field] of [['bad_crc_frame', 'message'], ['bad_prelude_crc_frame', 'prelude']]) {
      const n = d[key];
      if (n === undefined || n >= frames.length) continue;
      const f = Buffer.from(frames[n]);
      const at = field === 'message' ? f.length - 1 : 11;
      f[at] ^= 0xff;
      frames[n] = f;
    }
    record.status = 200;
    res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': record.request_id });
    if (typeof res.flushHeaders === 'function') res.flushHeaders();
    let writes = frames.map((f, i) => ({ bytes: f, frame: i }));
    const dropAt = d.drop_after_frames;
    if (dropAt !== undefined) writes = writes.filter((w) => w.frame < dropAt);
    if (d.coalesce) {
      writes = [{ bytes: Buffer.concat(writes.map((w) => w.bytes)), frame: writes.length - 1 }];
    } else if (d.split_bytes) {
      // The whole stream cut every N bytes, across frame boundaries; `frame`: the last frame
      // complete once that piece is written.
      const all = Buffer.concat(writes.map((w) => w.bytes));
      const ends = [];
      writes.reduce((off, w) => { ends.push(off + w.bytes.length); return off + w.bytes.length; }, 0);
      writes = [];
      for (let i = 0; i < all.length; i += d.split_bytes) {
        const end = Math.min(i + d.split_bytes, all.length);
        writes.push({ bytes: all.subarray(i, end), frame: ends.filter((e) => e <= end).length - 1 });
      }
    }
    const pace = d.chunk_delay_ms ?? (d.split_bytes ? 1 : 0);
    for (let i = 0; i < writes.length; i++) {
      if (i > 0 && pace) await sleep(pace);
      if (res.destroyed) return;
      const ok = await new Promise((resolve) => res.write(writes[i].bytes, (err) => resolve(!err)));
      if (!ok) return;
      record.events_sent = writes[i].frame + 1;
    }
    if (dropAt !== undefined) {
      await sleep(5);
      cut(req, res);
      return;
    }
    await new Promise((resolve) => res.end(resolve));
  }
}

/** Cuts the answer: the TCP connection (HTTP/1.1) or the stream (HTTP/2, RST_STREAM). */
function cut(req, res) {
  if (req.httpVersionMajor === 2) res.stream?.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  else req.socket?.destroy();
}

function fmtAmzDate(ms) {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** [name, value] pairs as received (HTTP/1.1 rawHeaders, or HTTP/2 headers incl. pseudo-headers). */
function headerPairs(req) {
  const out = [];
  const raw = req.rawHeaders ?? [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  if (req.httpVersionMajor === 2) {
    for (const k of [':authority', ':method', ':path', ':scheme']) {
      if (req.headers[k] !== undefined && !out.some(([n]) => n === k)) out.push([k, req.headers[k]]);
    }
  }
  return out;
}

function redactHeaders(headers) {
  const out = { ...headers };
  if (out['x-amz-security-token'] !== undefined) out['x-amz-security-token'] = '<redacted>';
  if (typeof out.authorization === 'string' && out.authorization.startsWith('Bearer ')) out.authorization = 'Bearer <redacted>';
  return out;
}


// ---------------------------------------------------------------------------------------------
// Command line

runMockCli(import.meta.url, {
  name: 'bedrock_mock',
  usage: '--port N [--host H] [--region R] [--models a,b] [--any-model]',
  options: { '--region': ['region', String], '--models': ['models', commaList], '--any-model': ['anyModel', true] },
  create: (opts) => new BedrockMock(opts),
  describe: (mock) => ({ base_url: mock.url, region: mock.region, credentials: mock.credentials, api_key: mock.apiKey }),
});
