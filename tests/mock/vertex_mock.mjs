// A mock Google Cloud Vertex AI upstream: Gemini models (generateContent,
// streamGenerateContent?alt=sse, text embeddings through :predict) and Claude models
// (rawPredict / streamRawPredict) under /v1/projects/{p}/locations/{l}/publishers/{pub}/models/,
// behind Google OAuth 2.0: Bearer access tokens issued by the mock's own token endpoint
// (POST /token, the JWT-bearer grant of a service account, RS256 signature checked) or a static
// token. See README.md beside this file.
//
// The answers themselves are the Gemini and Anthropic mocks' (planGenerate / planMessage and
// their stream writers, imported): Vertex adds its routes, OAuth, project checks, the :predict
// embeddings and Google's error envelope in front of them.
//
// Importable:   import { VertexMock } from './vertex_mock.mjs';
//               const mock = new VertexMock(); await mock.start();
//               const { path } = mock.writeServiceAccountFile(); … await mock.stop();
// Runnable:     node tests/mock/vertex_mock.mjs --port N [--host H] [--project P,Q] [--access-token T]
//                 [--token-lifetime S] [--service-account-file PATH] [--any-model]

import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { approxTokens, embeddingVector } from './openai_mock.mjs';
import {
  DEFAULT_MODELS as GEMINI_MODELS, GoogleError, STATUS_NAMES, parseDirectives as parseGeminiDirectives, partsText,
  validateGenerateBody, planGenerate, responseAt, writeStream, sseFrame,
} from './gemini_mock.mjs';
import {
  ApiError, parseDirectives as parseClaudeDirectives, lastUserText, validateMessagesBody, planMessage, cacheUsage,
  messageBody, writeMessageStream, forcedError as claudeForcedError, DEFAULT_MIN_CACHE_TOKENS,
} from './anthropic_mock.mjs';
import { sleep, readBody, runMockCli, RecordWaiters, createMockServer, listenServer, closeServer, serveRecordAdmin,
  commaList } from './mock_util.mjs';

export const DEFAULT_PROJECT = 'llmgw-mock-project';
/** The static token the mock accepts besides the ones it issues (the gateway's `access_token`). */
export const DEFAULT_ACCESS_TOKEN = 'ya29.mock-static-vertex-access-token-0123456789abcdef';
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** Google's token endpoint: the `aud` google-auth-library signs whatever the key file says. */
export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** The only `anthropic_version` Vertex AI documents for Claude request bodies. */
export const ANTHROPIC_VERTEX_VERSION = 'vertex-2023-10-16';
export const CLOCK_SKEW_SEC = 300;
export const MAX_JWT_LIFETIME_SEC = 3600;
export const DEFAULT_TOKEN_LIFETIME_SEC = 3599;
export const API_VERSIONS = Object.freeze(['v1', 'v1beta1']);

/**
 * Google's models: the Gemini mock's generative ones, and the text-embedding models :predict
 * serves (dims; maxInstances per request: gemini-embedding-001 takes one, the others 250).
 */
export const DEFAULT_GOOGLE_MODELS = Object.freeze([
  ...GEMINI_MODELS.filter((m) => m.methods.includes('generateContent')).map((m) => ({ ...m, kind: 'generate' })),
  { id: 'gemini-embedding-001', kind: 'embed', dims: 3072, maxInstances: 1 },
  { id: 'text-embedding-005', kind: 'embed', dims: 768, maxInstances: 250 },
  { id: 'text-multilingual-embedding-002', kind: 'embed', dims: 768, maxInstances: 250 },
]);
/** Claude models under publishers/anthropic, with Vertex's `@` version names. */
export const DEFAULT_ANTHROPIC_MODELS = Object.freeze([
  { id: 'claude-sonnet-4-5@20250929', max_output: 64000 },
  { id: 'claude-opus-4-1@20250805', max_output: 32000 },
  { id: 'claude-sonnet-4@20250514', max_output: 64000 },
  { id: 'claude-haiku-4-5@20251001', max_output: 64000 },
  { id: 'claude-3-5-haiku@20241022', max_output: 8192 },
]);
export const EMBEDDING_TASK_TYPES = Object.freeze(['RETRIEVAL_QUERY', 'RETRIEVAL_DOCUMENT', 'SEMANTIC_SIMILARITY',
  'CLASSIFICATION', 'CLUSTERING', 'QUESTION_ANSWERING', 'FACT_VERIFICATION', 'CODE_RETRIEVAL_QUERY']);
/** Embedding input limits: tokens per text (cut unless autoTruncate is false), per request. */
export const EMBED_TEXT_TOKENS = 2048;
export const EMBED_REQUEST_TOKENS = 20000;

// ---------------------------------------------------------------------------------------------
// Service accounts and JWTs

/**
 * A fresh service-account key (RSA 2048, PKCS#8 PEM) in the JSON form Google issues, its
 * `token_uri` set to `tokenUri`. Returns `{ json, publicKey }` (publicKey: SPKI PEM).
 */
export function makeServiceAccount({ tokenUri, projectId = DEFAULT_PROJECT, clientEmail } = {}) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const email = clientEmail ?? `llmgw-test-${crypto.randomBytes(3).toString('hex')}@${projectId}.iam.gserviceaccount.com`;
  const json = {
    type: 'service_account',
    project_id: projectId,
    private_key_id: crypto.randomBytes(20).toString('hex'),
    private_key: privateKey,
    client_email: email,
    client_id: String(BigInt(`0x${crypto.randomBytes(8).toString('hex')}`)).padStart(21, '1'),
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: tokenUri,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(email)}`,
    universe_domain: 'googleapis.com',
  };
  return { json, publicKey };
}

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

/**
 * An RS256 JWT over `claims` signed with the service account's key, as a token request's
 * `assertion` (for tests that need a hand-made, possibly wrong, assertion).
 */
export function signJwt(serviceAccount, claims, header = { alg: 'RS256', typ: 'JWT', kid: serviceAccount.private_key_id }) {
  const input = `${b64url(header)}.${b64url(claims)}`;
  const sig = crypto.sign('RSA-SHA256', Buffer.from(input), serviceAccount.private_key).toString('base64url');
  return `${input}.${sig}`;
}

/** The claims google-auth-library and the gateway sign for the token endpoint. */
export function assertionClaims(serviceAccount, { aud = serviceAccount.token_uri, scope = CLOUD_PLATFORM_SCOPE, now = Date.now(), lifetime = 3600 } = {}) {
  const iat = Math.floor(now / 1000);
  return { iss: serviceAccount.client_email, scope, aud, exp: iat + lifetime, iat };
}

class OAuthError extends Error {
  constructor(error, description, status = 400) {
    super(description);
    this.error = error;
    this.status = status;
  }
}
const badGrant = (d) => new OAuthError('invalid_grant', d);
const TIMEFRAME = 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.';

function decodeSegment(s) {
  if (!/^[A-Za-z0-9_-]+$/.test(s)) throw badGrant('Invalid JWT: the token is not three base64url segments.');
  try {
    return JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  } catch {
    throw badGrant('Invalid JWT: a segment is not base64url-encoded JSON.');
  }
}

// ---------------------------------------------------------------------------------------------
// Vertex's errors: Google's envelope {"error": {"code", "message", "status", ["details"]}}

const AUTH_HELP = 'Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';
export const UNAUTHENTICATED_MESSAGE = `Request had invalid authentication credentials. ${AUTH_HELP}`;
export const MISSING_CREDENTIALS_MESSAGE = `Request is missing required authentication credential. ${AUTH_HELP}`;
const VERTEX_MESSAGES = {
  400: 'Request contains an invalid argument.',
  401: UNAUTHENTICATED_MESSAGE,
  429: 'Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.',
  500: 'Internal error encountered.',
  503: 'The service is currently unavailable.',
  504: 'The request timed out. Please try again.',
};
const errorInfo = (reason, metadata) => ({ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain: 'googleapis.com', metadata });
const resourceName = (t) => `projects/${t.project}/locations/${t.location}/publishers/${t.publisher}/models/${t.model}`;
const invalid = (message) => new GoogleError(400, message);

function rpcMethod(action) {
  const name = { generateContent: 'GenerateContent', streamGenerateContent: 'StreamGenerateContent', predict: 'Predict',
    rawPredict: 'RawPredict', streamRawPredict: 'StreamRawPredict' }[action] ?? action;
  return `google.cloud.aiplatform.v1.PredictionService.${name}`;
}

function unauthenticated(reason, action, message = UNAUTHENTICATED_MESSAGE) {
  return new GoogleError(401, message, [errorInfo(reason, { service: 'aiplatform.googleapis.com', method: rpcMethod(action) })]);
}

function permissionDenied(t) {
  const resource = resourceName(t);
  return new GoogleError(403, `Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/${resource}' (or it may not exist).`,
    [{ ...errorInfo('IAM_PERMISSION_DENIED', { permission: 'aiplatform.endpoints.predict', resource }), domain: 'aiplatform.googleapis.com' }]);
}

function modelNotFound(t) {
  return new GoogleError(404, `Publisher Model \`${resourceName(t)}\` was not found or your project does not have access to it. Please ensure you are using a valid model version. For more information, see: https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions`);
}

/** The error `[vertex:status=N]` (and, on Gemini routes, `[mock:status=N]`) answers with. */
export function vertexError(status, t, retryAfter) {
  if (status === 401) return unauthenticated('ACCESS_TOKEN_TYPE_UNSUPPORTED', t.action);
  if (status === 403) return permissionDenied(t);
  if (status === 404) return modelNotFound(t);
  const details = status === 429 && retryAfter !== undefined ? [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${retryAfter}s` }] : undefined;
  return new GoogleError(status, VERTEX_MESSAGES[status] ?? `Mock error with status ${status}.`, details);
}

// `[vertex:name=value]` directives: Vertex's own front-end behaviour, on every publisher.
const VERTEX_DIRECTIVE_RE = /\[vertex:([a-z_]+)(?:=([^\]]*))?\]/g;
const VERTEX_INTS = new Set(['status', 'retry_after']);

/** Parses `[vertex:status=N]` / `[vertex:retry_after=S]`; other names throw. */
export function parseVertexDirectives(text) {
  const out = {};
  if (typeof text !== 'string') return out;
  for (const [, name, value] of text.matchAll(VERTEX_DIRECTIVE_RE)) {
    const n = Number(value);
    if (!VERTEX_INTS.has(name)) throw new Error(`unknown vertex directive ${name}`);
    if (value === undefined || !Number.isInteger(n) || n < 0) throw new Error(`vertex directive ${name} needs a non-negative integer, got ${value}`);
    out[name] = n;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Vertex's additions to Gemini's answers

/** Vertex's GenerateContentResponse: Gemini's, plus createTime and usageMetadata.trafficType. */
function vertexResponse(r, createTime) {
  const { candidates, usageMetadata, modelVersion, responseId, ...rest } = r;
  const { promptTokenCount, candidatesTokenCount, totalTokenCount, ...usageRest } = usageMetadata;
  return {
    candidates,
    usageMetadata: { promptTokenCount, candidatesTokenCount, totalTokenCount, trafficType: 'ON_DEMAND', ...usageRest },
    modelVersion, createTime, responseId, ...rest,
  };
}

const GOOGLE_JSON = 'application/json; charset=UTF-8';
const GOOGLE_HEADERS = { vary: 'Origin, X-Origin, Referer', 'x-content-type-options': 'nosniff' };
const ROUTE_RE = /^\/([^/]+)\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/([^/]+)\/models\/([^/]+)$/;

function googleNotFoundPage(p) {
  return `<!DOCTYPE html>\n<html lang=en>\n  <title>Error 404 (Not Found)!!1</title>\n  <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>${p}</code> was not found on this server.  <ins>That’s all we know.</ins>\n`;
}

// ---------------------------------------------------------------------------------------------
// The server

export class VertexMock {
  /**
   * @param {object} [options]
   * @param {string[]} [options.projects] projects the caller may use (default [DEFAULT_PROJECT]); others: 403
   * @param {string|null} [options.accessToken] a static Bearer token accepted besides issued ones (null: none)
   * @param {number} [options.tokenLifetimeSec] `expires_in` of issued tokens (default 3599); settable later
   * @param {string[]} [options.audiences] JWT `aud` values accepted besides the mock's own token URI
   * @param {Array<string|object>} [options.googleModels] publishers/google models (ids or DEFAULT_GOOGLE_MODELS-like)
   * @param {Array<string|object>} [options.anthropicModels] publishers/anthropic models
   * @param {boolean} [options.anyModel] accept every model id (kind from the action)
   * @param {string[]} [options.anthropicVersions] accepted `anthropic_version`s (default [ANTHROPIC_VERTEX_VERSION])
   * @param {number} [options.minCacheTokens] Claude prompt-caching minimum (default 1024)
   * @param {string} [options.serviceAccountFile] on start(), write a fresh service-account file there
   * @param {() => number} [options.now] the clock (ms) for JWT checks and token expiry
   */
  constructor(options = {}) {
    this.projects = options.projects ?? [options.project ?? DEFAULT_PROJECT];
    this.accessToken = options.accessToken === undefined ? DEFAULT_ACCESS_TOKEN : options.accessToken;
    this.tokenLifetimeSec = options.tokenLifetimeSec ?? DEFAULT_TOKEN_LIFETIME_SEC;
    this.audiences = options.audiences ?? [];
    this.googleModels = (options.googleModels ?? DEFAULT_GOOGLE_MODELS).map((m) => (typeof m === 'string'
      ? DEFAULT_GOOGLE_MODELS.find((d) => d.id === m) ?? { id: m, kind: 'generate', outputTokenLimit: 65536, thinking: true }
      : { ...m }));
    this.anthropicModels = (options.anthropicModels ?? DEFAULT_ANTHROPIC_MODELS).map((m) => (typeof m === 'string'
      ? DEFAULT_ANTHROPIC_MODELS.find((d) => d.id === m) ?? { id: m, max_output: 64000 } : { ...m }));
    this.anyModel = options.anyModel ?? false;
    this.anthropicVersions = options.anthropicVersions ?? [ANTHROPIC_VERTEX_VERSION];
    this.minCacheTokens = options.minCacheTokens ?? DEFAULT_MIN_CACHE_TOKENS;
    this.serviceAccountFile = options.serviceAccountFile ?? null;
    this.now = options.now ?? (() => Date.now());
    this.host = options.host ?? '127.0.0.1';
    this.requests = [];
    this.tokenRequests = [];
    this.serviceAccounts = new Map(); // client_email → {publicKey, keyId}
    this.tokens = new Map(); // access token → {seq, email, scope, expiresAtMs, revoked}
    this.claudeCache = new Map();
    this.tempDirs = [];
    this.waiters = new RecordWaiters(() => this.recorded());
    ({ server: this.server, sockets: this.sockets } = createMockServer(http, (req, res) => this.#handle(req, res)));
  }

  async start(port = 0) {
    await listenServer(this.server, port, this.host);
    if (this.serviceAccountFile) this.writeServiceAccountFile(this.serviceAccountFile);
    return this.port;
  }

  get port() { return this.server.address().port; }
  /** The origin: the gateway's `base_url`, @google/genai's `httpOptions.baseUrl` (no /v1). */
  get url() { return `http://${this.host}:${this.port}`; }
  get baseUrl() { return this.url; }
  /** The OAuth token endpoint, the `token_uri` of the service-account files the mock writes. */
  get tokenUri() { return `${this.url}/token`; }
  /** Token requests received (granted or not) / tokens issued. */
  get tokenRequestCount() { return this.tokenRequests.length; }
  get issuedTokenCount() { return this.tokenRequests.filter((r) => r.status === 200).length; }

  async stop() {
    this.waiters.rejectAll();
    await closeServer(this.server, this.sockets);
    for (const d of this.tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }

  clearRequests() { this.requests = []; }
  clearTokenRequests() { this.tokenRequests = []; }
  recorded() { return this.requests.map((r) => ({ ...r })); }
  tokenRecords() { return this.tokenRequests.map((r) => ({ ...r })); }
  waitFor(predicate, timeoutMs = 5_000, what = 'condition') { return this.waiters.wait(predicate, timeoutMs, what); }

  /** Registers a service account's public key (SPKI/PKCS#1 PEM or a KeyObject) under its email. */
  addServiceAccount(clientEmail, publicKey, keyId = null) {
    this.serviceAccounts.set(clientEmail, { publicKey: crypto.createPublicKey(publicKey), keyId });
  }

  /** A fresh service account known to the mock: its key-file JSON (token_uri → this mock). */
  createServiceAccount({ projectId = this.projects[0], clientEmail } = {}) {
    const { json, publicKey } = makeServiceAccount({ tokenUri: this.tokenUri, projectId, clientEmail });
    this.addServiceAccount(json.client_email, publicKey, json.private_key_id);
    return json;
  }

  /**
   * Writes a fresh service account's key file (mode 0600) to `file`, or into a temporary folder
   * removed at stop(). Returns `{ path, json }`.
   */
  writeServiceAccountFile(file = null, opts = {}) {
    const json = this.createServiceAccount(opts);
    let target = file;
    if (!target) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vertex-mock-sa-'));
      this.tempDirs.push(dir);
      target = path.join(dir, 'service-account.json');
    }
    fs.writeFileSync(target, `${JSON.stringify(json, null, 2)}\n`, { mode: 0o600 });
    return { path: target, json };
  }

  /** Makes every issued token expired (401 ACCESS_TOKEN_EXPIRED from now on). */
  expireTokens() {
    const now = this.now();
    for (const t of this.tokens.values()) t.expiresAtMs = Math.min(t.expiresAtMs, now);
  }

  /** Makes every issued token unknown (401 like a revoked token). */
  revokeTokens() {
    for (const t of this.tokens.values()) t.revoked = true;
  }

  async #handle(req, res) {
    const url = new URL(req.url, 'http://mock');
    if (url.pathname.startsWith('/__mock/')) return this.#admin(req, res, url);
    if (url.pathname === '/token') return this.#token(req, res);
    const headers = { ...req.headers };
    if (headers.authorization !== undefined) headers.authorization = headers.authorization.replace(/^(\S+\s+).*$/s, '$1[redacted]');
    const rec = {
      seq: this.requests.length + 1, method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams),
      connection_id: req.socket.mockConnectionId, headers, api_version: null, project: null, location: null,
      publisher: null, model: null, action: null, auth: null, token_seq: null, body_text: '', body: null,
      received_at_ms: Date.now(), status: null, error_shape: null, events_sent: 0, completed: false, closed_early: false,
    };
    this.requests.push(rec);
    res.on('close', () => { if (!res.writableFinished) rec.closed_early = true; this.waiters.notify(); });
    res.on('finish', () => { rec.completed = true; this.waiters.notify(); });
    try {
      rec.body_text = (await readBody(req)).toString('utf8');
      await this.#route(req, res, url, rec);
    } catch (err) {
      if (err instanceof GoogleError) this.#sendGoogleError(res, rec, err);
      else if (err instanceof ApiError) this.#sendClaudeError(res, rec, err);
      else if (!res.headersSent) this.#sendGoogleError(res, rec, new GoogleError(500, `mock failure: ${err.message}`));
      else res.destroy();
    }
  }

  #admin(req, res, url) {
    const send = (status, obj) => {
      const text = obj === undefined ? '' : JSON.stringify(obj);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /__mock/tokens') {
      return send(200, { requests: this.tokenRecords(), request_count: this.tokenRequestCount, issued: this.issuedTokenCount });
    }
    if (route === 'DELETE /__mock/tokens') { this.clearTokenRequests(); return send(204); }
    if (route === 'POST /__mock/tokens/expire') { this.expireTokens(); return send(204); }
    if (route === 'POST /__mock/tokens/revoke') { this.revokeTokens(); return send(204); }
    if (route === 'POST /__mock/token_lifetime') {
      const s = Number(url.searchParams.get('seconds'));
      if (!Number.isInteger(s) || s < 1) return send(400, new GoogleError(400, 'seconds must be a positive integer').body());
      this.tokenLifetimeSec = s;
      return send(204);
    }
    if (route === 'POST /__mock/service_accounts') return send(200, this.createServiceAccount());
    return serveRecordAdmin(req, res, url, this, new GoogleError(404, `no mock admin route ${req.method} ${url.pathname}`).body());
  }

  // -------------------------------------------------------------------------------------------
  // OAuth 2.0 token endpoint (JWT-bearer grant)

  async #token(req, res) {
    const rec = {
      seq: this.tokenRequests.length + 1, received_at_ms: Date.now(), method: req.method,
      content_type: req.headers['content-type'] ?? null, grant_type: null, jwt_header: null, claims: null,
      status: null, error: null, error_description: null, expires_in: null,
    };
    this.tokenRequests.push(rec);
    const send = (status, obj) => {
      rec.status = status;
      const text = `${JSON.stringify(obj, null, 2)}\n`;
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate',
        pragma: 'no-cache', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      const raw = (await readBody(req)).toString('utf8');
      if (req.method !== 'POST') throw new OAuthError('invalid_request', `Method ${req.method} is not allowed on the token endpoint.`, 405);
      if (!/^application\/x-www-form-urlencoded\b/i.test(rec.content_type ?? '')) {
        throw new OAuthError('invalid_request', 'The token request must be application/x-www-form-urlencoded.');
      }
      const form = new URLSearchParams(raw);
      rec.grant_type = form.get('grant_type');
      if (rec.grant_type === null) throw new OAuthError('invalid_request', 'Required parameter is missing: grant_type');
      if (rec.grant_type !== JWT_BEARER_GRANT) throw new OAuthError('unsupported_grant_type', `Invalid grant_type: ${rec.grant_type}`);
      const assertion = form.get('assertion');
      if (!assertion) throw new OAuthError('invalid_request', 'Required parameter is missing: assertion');
      const claims = this.#verifyAssertion(assertion, rec);
      const token = `ya29.c.mock-${crypto.randomBytes(36).toString('base64url')}`;
      const lifetime = this.tokenLifetimeSec;
      this.tokens.set(token, { seq: rec.seq, email: claims.iss, scope: claims.scope, expiresAtMs: this.now() + lifetime * 1000, revoked: false });
      rec.expires_in = lifetime;
      send(200, { access_token: token, expires_in: lifetime, token_type: 'Bearer' });
    } catch (err) {
      if (!(err instanceof OAuthError)) err = new OAuthError('server_error', `mock failure: ${err.message}`, 500);
      rec.error = err.error;
      rec.error_description = err.message;
      send(err.status, { error: err.error, error_description: err.message });
    }
    this.waiters.notify();
  }

  /** Checks the assertion as Google's token endpoint does; returns its claims. */
  #verifyAssertion(jwt, rec) {
    const parts = jwt.split('.');
    if (parts.length !== 3) throw badGrant('Invalid JWT: the token is not three base64url segments.');
    const header = decodeSegment(parts[0]);
    const claims = decodeSegment(parts[1]);
    rec.jwt_header = header;
    rec.claims = claims;
    if (header?.alg !== 'RS256') throw badGrant('Invalid JWT Signature.');
    const sa = typeof claims?.iss === 'string' ? this.serviceAccounts.get(claims.iss) : undefined;
    if (!sa) throw badGrant('Invalid grant: account not found');
    const ok = crypto.verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), sa.publicKey, Buffer.from(parts[2], 'base64url'));
    if (!ok) throw badGrant('Invalid JWT Signature.');
    if (![this.tokenUri, ...this.audiences].includes(claims.aud)) throw badGrant('Invalid JWT: Failed audience check.');
    const now = Math.floor(this.now() / 1000);
    const { iat, exp } = claims;
    if (!Number.isInteger(iat) || !Number.isInteger(exp) || exp <= iat || exp - iat > MAX_JWT_LIFETIME_SEC ||
        iat > now + CLOCK_SKEW_SEC || exp < now - CLOCK_SKEW_SEC) {
      throw badGrant(TIMEFRAME);
    }
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(/\s+/) : [];
    if (!scopes.includes(CLOUD_PLATFORM_SCOPE)) throw new OAuthError('invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
    return claims;
  }

  // -------------------------------------------------------------------------------------------
  // The API

  #checkAuth(req, rec) {
    const h = req.headers.authorization;
    if (h === undefined) {
      rec.auth = 'missing';
      throw unauthenticated('CREDENTIALS_MISSING', rec.action, MISSING_CREDENTIALS_MESSAGE);
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (!m) {
      rec.auth = 'invalid';
      throw unauthenticated('ACCESS_TOKEN_TYPE_UNSUPPORTED', rec.action);
    }
    if (this.accessToken !== null && m[1] === this.accessToken) {
      rec.auth = 'static';
      return;
    }
    const t = this.tokens.get(m[1]);
    if (!t || t.revoked) {
      rec.auth = 'invalid';
      throw unauthenticated('ACCESS_TOKEN_TYPE_UNSUPPORTED', rec.action);
    }
    rec.token_seq = t.seq;
    if (this.now() >= t.expiresAtMs) {
      rec.auth = 'expired';
      throw unauthenticated('ACCESS_TOKEN_EXPIRED', rec.action);
    }
    rec.auth = 'issued';
  }

  #findModel(t) {
    const list = t.publisher === 'google' ? this.googleModels : t.publisher === 'anthropic' ? this.anthropicModels : [];
    const m = list.find((x) => x.id === t.model);
    if (m) return m;
    if (this.anyModel && t.publisher === 'google') {
      return t.action === 'predict' ? { id: t.model, kind: 'embed', dims: 768, maxInstances: 250 } : { id: t.model, kind: 'generate', outputTokenLimit: 65536, thinking: true };
    }
    if (this.anyModel && t.publisher === 'anthropic') return { id: t.model, max_output: 64000 };
    throw modelNotFound(t);
  }

  async #route(req, res, url, rec) {
    const m = ROUTE_RE.exec(url.pathname);
    let t = null;
    if (m && req.method === 'POST' && API_VERSIONS.includes(m[1])) {
      const seg = decodeURIComponent(m[5]);
      const colon = seg.lastIndexOf(':');
      t = { apiVersion: m[1], project: decodeURIComponent(m[2]), location: decodeURIComponent(m[3]), publisher: decodeURIComponent(m[4]),
        model: colon === -1 ? seg : seg.slice(0, colon), action: colon === -1 ? '' : seg.slice(colon + 1) };
    }
    // Each publisher's methods; a publisher the mock does not serve has no models (404 NOT_FOUND).
    const actions = { google: ['generateContent', 'streamGenerateContent', 'predict'], anthropic: ['rawPredict', 'streamRawPredict'] };
    const known = actions[t?.publisher] ?? [...actions.google, ...actions.anthropic];
    if (!t || !known.includes(t.action)) {
      rec.status = 404;
      rec.error_shape = 'html';
      const text = googleNotFoundPage(url.pathname);
      res.writeHead(404, { 'content-type': 'text/html; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
      return res.end(text);
    }
    Object.assign(rec, { api_version: t.apiVersion, project: t.project, location: t.location, publisher: t.publisher, model: t.model, action: t.action });
    this.#checkAuth(req, rec);
    if (!this.projects.includes(t.project)) throw permissionDenied(t);
    const model = this.#findModel(t);
    // rawPredict hands the body to Anthropic's API as it is: its parse errors are Anthropic's.
    const claude = t.publisher === 'anthropic';
    let body;
    try {
      body = JSON.parse(rec.body_text);
    } catch (e) {
      throw claude ? new ApiError(400, `There was an error parsing the body of your request: ${e.message}`) : invalid(`Invalid JSON payload received. ${e.message}`);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw claude ? new ApiError(400, 'Input should be a valid dictionary or object') : invalid('Invalid JSON payload received. Expected an object.');
    }
    rec.body = body;
    if (t.publisher === 'anthropic') return this.#claude(req, res, rec, t, model, body);
    if (t.action === 'predict') return this.#predict(res, rec, t, model, body);
    return this.#gemini(res, url, rec, t, model, body);
  }

  /** `[vertex:…]` directives of `text`: a Google-shaped error when status is set. */
  #vertexDirectives(text, t) {
    let v;
    try {
      v = parseVertexDirectives(text);
    } catch (e) {
      throw invalid(e.message);
    }
    if (v.status !== undefined && v.status !== 200) throw vertexError(v.status, t, v.retry_after);
  }

  async #gemini(res, url, rec, t, model, body) {
    if (model.kind === 'embed') throw invalid(`The model ${t.model} does not support ${t.action}; embedding models are served by :predict.`);
    if (t.action === 'streamGenerateContent' && url.searchParams.get('alt') !== 'sse') {
      throw invalid('The mock streams Server-Sent Events only: call streamGenerateContent with ?alt=sse (the JSON-array stream is not implemented).');
    }
    const functions = validateGenerateBody(body, model);
    const text = partsText(body.contents.at(-1).parts);
    this.#vertexDirectives(text, t);
    let d;
    try {
      d = parseGeminiDirectives(text);
    } catch (e) {
      throw invalid(e.message);
    }
    if (d.delay_ms) await sleep(d.delay_ms);
    if (res.destroyed) return undefined;
    if (d.drop) return res.socket?.destroy();
    if (d.status !== undefined && d.status !== 200) throw vertexError(d.status, t, d.retry_after);
    const plan = planGenerate(body, t.model, functions, d, model);
    const createTime = new Date().toISOString().replace(/Z$/, '000Z');
    if (t.action === 'generateContent') return this.#sendJson(res, rec, 200, vertexResponse(responseAt(plan, plan.steps.length), createTime));
    rec.status = 200;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'content-disposition': 'attachment', ...GOOGLE_HEADERS });
    res.flushHeaders();
    return writeStream(res, plan, d, (chunk) => this.#write(res, rec, chunk), (c) => vertexResponse(c, createTime));
  }

  /** Text embeddings: {instances: [{content, task_type?, title?}], parameters?: {autoTruncate, outputDimensionality}}. */
  #predict(res, rec, t, model, body) {
    if (model.kind !== 'embed') {
      throw new GoogleError(400, `${model.id.startsWith('gemini') ? 'Gemini' : 'This model'} cannot be accessed through Vertex Predict/RawPredict API. Please follow https://cloud.google.com/vertex-ai/docs/generative-ai/start/quickstarts/quickstart-multimodal for Gemini usage.`);
    }
    for (const k of Object.keys(body)) if (k !== 'instances' && k !== 'parameters') throw invalid(`Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
    const { instances, parameters = {} } = body;
    if (!Array.isArray(instances) || instances.length === 0) throw invalid('* PredictRequest.instances: instances must not be empty.');
    const max = model.maxInstances ?? 250;
    if (instances.length > max) {
      throw invalid(max === 1
        ? `Unable to submit request because the model ${t.model} supports only 1 instance per request. Send one text per request.`
        : `Unable to submit request because the number of instances (${instances.length}) is more than ${max}, the maximum per request.`);
    }
    if (parameters === null || typeof parameters !== 'object' || Array.isArray(parameters)) throw invalid("Invalid value at 'parameters' (expected an object)");
    for (const k of Object.keys(parameters)) if (k !== 'autoTruncate' && k !== 'outputDimensionality') throw invalid(`Invalid parameter "${k}".`);
    const autoTruncate = parameters.autoTruncate ?? true;
    if (typeof autoTruncate !== 'boolean') throw invalid('parameters.autoTruncate must be a boolean.');
    const dims = parameters.outputDimensionality ?? model.dims;
    if (!Number.isInteger(dims) || dims < 1 || dims > model.dims) throw invalid(`parameters.outputDimensionality must be an integer in [1, ${model.dims}].`);
    let total = 0;
    const texts = instances.map((inst, i) => {
      if (inst === null || typeof inst !== 'object' || Array.isArray(inst)) throw invalid(`instances[${i}] must be an object.`);
      for (const k of Object.keys(inst)) if (!['content', 'task_type', 'title', 'mimeType'].includes(k)) throw invalid(`Invalid instance field "${k}" in instances[${i}].`);
      if (typeof inst.content !== 'string') throw invalid(`instances[${i}].content must be a string.`);
      if (inst.task_type !== undefined && !EMBEDDING_TASK_TYPES.includes(inst.task_type)) throw invalid(`instances[${i}].task_type: unknown task type ${inst.task_type}.`);
      if (inst.title !== undefined && typeof inst.title !== 'string') throw invalid(`instances[${i}].title must be a string.`);
      if (inst.title !== undefined && inst.task_type !== 'RETRIEVAL_DOCUMENT') throw invalid('A title can only be given with task_type RETRIEVAL_DOCUMENT.');
      const tokens = approxTokens(inst.content);
      if (tokens > EMBED_TEXT_TOKENS && !autoTruncate) {
        throw invalid(`Unable to submit request because the input token count is ${tokens} but the model supports up to ${EMBED_TEXT_TOKENS}. Reduce the input token count and try again. You can also use the auto-truncate option.`);
      }
      total += Math.min(tokens, EMBED_TEXT_TOKENS);
      return inst.content;
    });
    if (total > EMBED_REQUEST_TOKENS) throw invalid(`Unable to submit request because the input token count is ${total} but the request supports up to ${EMBED_REQUEST_TOKENS}.`);
    for (const text of texts) {
      this.#vertexDirectives(text, t);
      let d;
      try {
        d = parseGeminiDirectives(text);
      } catch (e) {
        throw invalid(e.message);
      }
      if (d.status !== undefined && d.status !== 200) throw vertexError(d.status, t, d.retry_after);
    }
    const predictions = texts.map((text) => {
      const tokens = approxTokens(text);
      const used = tokens > EMBED_TEXT_TOKENS ? text.slice(0, EMBED_TEXT_TOKENS * 4) : text;
      return { embeddings: { statistics: { truncated: tokens > EMBED_TEXT_TOKENS, token_count: Math.min(tokens, EMBED_TEXT_TOKENS) },
        values: Array.from(embeddingVector(t.model, used, dims)) } };
    });
    const billable = texts.reduce((s, x) => s + x.replace(/\s/g, '').length, 0);
    return this.#sendJson(res, rec, 200, { predictions, metadata: { billableCharacterCount: billable } });
  }

  async #claude(req, res, rec, t, model, body) {
    if (!('anthropic_version' in body)) throw new ApiError(400, 'anthropic_version: Field required');
    if (!this.anthropicVersions.includes(body.anthropic_version)) {
      throw new ApiError(400, `anthropic_version: Input should be ${this.anthropicVersions.map((v) => `'${v}'`).join(' or ')}`);
    }
    if ('model' in body) throw new ApiError(400, 'model: Extra inputs are not permitted');
    const stream = t.action === 'streamRawPredict';
    if (stream && body.stream !== true) throw new ApiError(400, 'stream: streamRawPredict needs "stream": true in the body');
    if (!stream && body.stream === true) throw new ApiError(400, 'stream: "stream": true needs streamRawPredict, not rawPredict');
    const { anthropic_version: _v, ...rest } = body;
    const messages = { model: t.model, ...rest };
    const checked = validateMessagesBody(messages, { strictTurns: true, maxOutput: model.max_output });
    const text = lastUserText(messages.messages);
    this.#vertexDirectives(text, t);
    let d;
    try {
      d = parseClaudeDirectives(text);
    } catch (e) {
      throw new ApiError(400, e.message);
    }
    if (d.delay_ms) await sleep(d.delay_ms);
    if (res.destroyed) return undefined;
    if (d.drop) return res.socket?.destroy();
    if (d.status !== undefined && d.status !== 200) throw claudeForcedError(d, t.model);
    const plan = planMessage(messages, d, checked, cacheUsage(this.claudeCache, messages, this.minCacheTokens));
    if (!stream) {
      rec.status = 200;
      const text2 = JSON.stringify(messageBody(plan));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text2), ...GOOGLE_HEADERS });
      return res.end(text2);
    }
    rec.status = 200;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...GOOGLE_HEADERS });
    res.flushHeaders();
    return writeMessageStream(res, plan, d, (chunk) => this.#write(res, rec, chunk));
  }

  /** Google's JSON: pretty-printed with two spaces, a trailing newline. */
  #sendJson(res, rec, status, obj) {
    if (res.destroyed) return;
    const text = `${JSON.stringify(obj, null, 2)}\n`;
    rec.status = status;
    res.writeHead(status, { 'content-type': GOOGLE_JSON, 'content-length': String(Buffer.byteLength(text)), ...GOOGLE_HEADERS });
    res.end(text);
  }

  #sendGoogleError(res, rec, err) {
    rec.error_shape = 'google';
    this.#sendJson(res, rec, err.code, err.body());
  }

  /** Claude's own errors (from Anthropic's backend behind Vertex): Anthropic's shape. */
  #sendClaudeError(res, rec, err) {
    if (res.destroyed) return;
    rec.status = err.status;
    rec.error_shape = 'anthropic';
    const text = JSON.stringify({ type: 'error', error: { type: err.type, message: err.message } });
    res.writeHead(err.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text),
      ...(err.status === 529 ? { 'x-should-retry': 'true' } : {}), ...err.headers });
    res.end(text);
  }

  #write(res, rec, text) {
    return new Promise((resolve) => res.write(text, (err) => {
      if (!err) rec.events_sent++;
      resolve(!err);
    }));
  }
}

export { STATUS_NAMES, sseFrame };

// ---------------------------------------------------------------------------------------------
// Command line

runMockCli(import.meta.url, {
  name: 'vertex_mock',
  usage: '--port N [--host H] [--project P,Q] [--access-token T] [--token-lifetime S] [--service-account-file PATH] [--any-model]',
  options: {
    '--project': ['projects', commaList], '--access-token': ['accessToken', String],
    '--token-lifetime': ['tokenLifetimeSec', Number], '--service-account-file': ['serviceAccountFile', String],
    '--any-model': ['anyModel', true],
  },
  create: (opts) => new VertexMock(opts),
  describe: (mock) => ({ base_url: mock.url, token_uri: mock.tokenUri, projects: mock.projects, access_token: mock.accessToken,
    service_account_file: mock.serviceAccountFile, token_lifetime_sec: mock.tokenLifetimeSec }),
});
