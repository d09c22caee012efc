// The admin API's role matrix, driven by the document the server itself serves at
// GET /admin/openapi.json: for every path × method in it, no token / an expired token / a
// tampered token get 401 (except operations whose x-llmgw-min-role is `none`), a role below
// x-llmgw-min-role gets 403 and a role at or above it never gets 401 or 403. Methods a path
// does not list get 405 with an Allow header, unknown /admin paths 404. Together: the document
// matches the real routes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import {
  startAdminStack, adminRequest, adminLogin, request, assertOpenAIError, decodeJwt, signJwt, b64url,
  jwtClaims, REPO_ROOT, JWT_LIFETIME_S,
} from './harness.mjs';

const T = { timeout: 120_000 };
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const RANK = { none: 0, viewer: 1, editor: 2, admin: 3 };

/** Every operation docs/admin-api.md names: the document must hold exactly these. */
const DOCUMENTED = [
  'POST /admin/auth/login', 'POST /admin/auth/token', 'GET /admin/auth/me', 'GET /admin/openapi.json',
  'GET /admin/keys', 'POST /admin/keys', 'GET /admin/keys/{id}', 'PATCH /admin/keys/{id}', 'DELETE /admin/keys/{id}',
  'POST /admin/keys/{id}/regenerate', 'GET /admin/keys/{id}/spend',
  'GET /admin/providers', 'POST /admin/providers', 'GET /admin/providers/{id}', 'PATCH /admin/providers/{id}',
  'DELETE /admin/providers/{id}',
  'GET /admin/models', 'POST /admin/models', 'GET /admin/models/{id}', 'PATCH /admin/models/{id}',
  'DELETE /admin/models/{id}', 'GET /admin/models/{id}/prices', 'PUT /admin/models/{id}/prices',
  'DELETE /admin/models/{id}/prices',
  'GET /admin/aliases', 'POST /admin/aliases', 'GET /admin/aliases/{alias}', 'PATCH /admin/aliases/{alias}',
  'DELETE /admin/aliases/{alias}',
  'GET /admin/users', 'POST /admin/users', 'GET /admin/users/{id}', 'PATCH /admin/users/{id}', 'DELETE /admin/users/{id}',
  'GET /admin/tokens', 'POST /admin/tokens', 'GET /admin/tokens/{id}', 'PATCH /admin/tokens/{id}',
  'DELETE /admin/tokens/{id}', 'POST /admin/tokens/{id}/regenerate',
  'GET /admin/usage', 'GET /admin/audit', 'GET /admin/logging', 'PUT /admin/logging',
];

/** The lowest role the roles table of docs/admin-api.md allows for an operation. */
function roleFromTable(method, p) {
  if (['/admin/auth/login', '/admin/auth/token', '/admin/openapi.json'].includes(p)) return 'none';
  if (p === '/admin/auth/me') return 'viewer';
  if (/^\/admin\/(users|tokens|audit)(\/|$)/.test(p)) return 'admin';
  if (p === '/admin/logging') return method === 'get' ? 'viewer' : 'admin';
  return method === 'get' ? 'viewer' : 'editor';
}

let s;
let doc;
const tokens = {}; // viewer, editor, admin, expired, tampered

before(async () => {
  s = await startAdminStack();
  for (const role of ['viewer', 'editor']) {
    const email = `${role}@roles.llmgw.test`;
    const password = `${role} password for the matrix`;
    const r = await s.req('POST', '/admin/users', { email, password, role });
    assert.equal(r.status, 201, r.text);
    tokens[role] = (await adminLogin(s.gw.port, email, password)).token;
  }
  tokens.admin = s.admin.token;
  const now = Math.floor(Date.now() / 1000);
  tokens.expired = signJwt({ alg: 'HS256', typ: 'JWT' },
    jwtClaims(s.admin.id, { iat: now - JWT_LIFETIME_S - 120, exp: now - 120 }));
  const [h, , sig] = tokens.admin.split('.');
  tokens.tampered = `${h}.${b64url({ ...decodeJwt(tokens.admin).payload, roles: ['admin'], sub: s.admin.id, jti: 'tampered' })}.${sig}`;

  const r = await request(s.gw.port, { path: '/admin/openapi.json' });
  assert.equal(r.status, 200, `GET /admin/openapi.json without a token: ${r.status} ${r.text.slice(0, 500)}`);
  assert.match(String(r.headers['content-type']), /application\/json/);
  doc = r.json;
  assert.ok(doc && typeof doc.paths === 'object', `not an OpenAPI document: ${r.text.slice(0, 500)}`);
});

after(async () => {
  await s?.close();
});

/** [{method, path, op}] of the document. */
function operations() {
  const out = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const m of METHODS) if (item[m]) out.push({ method: m, path: p, op: item[m] });
  }
  return out;
}

/** A concrete URL for a path template: ids that do not exist. */
function concrete(p) {
  const prefix = p.startsWith('/admin/keys') ? 'key_' : p.startsWith('/admin/users') ? 'usr_'
    : p.startsWith('/admin/tokens') ? 'tok_' : 'zz_';
  return p.replace('{id}', `${prefix}00000000000000ff`).replace('{alias}', 'no-such-alias-00ff');
}

let addrSeq = 0;
/** Sign-in routes get requests from their own addresses, so the matrix never trips a throttle. */
const signInAddress = () => `127.2.${Math.floor(++addrSeq / 200)}.${(addrSeq % 200) + 1}`;

/** Calls one operation as `who` (a key of `tokens`, or 'anonymous'). */
function call({ method, path: p, op }, who) {
  const token = who === 'anonymous' ? undefined : tokens[who];
  const body = op.requestBody ? {} : undefined;
  const localAddress = op['x-llmgw-min-role'] === 'none' && method !== 'get' ? signInAddress() : undefined;
  return adminRequest(s.gw.port, token, method.toUpperCase(), concrete(p), body, { localAddress });
}

const label = (o) => `${o.method.toUpperCase()} ${o.path}`;

test('the served document is OpenAPI 3.1, equal to api/openapi.json, with every documented operation', T, async () => {
  assert.equal(doc.openapi, '3.1.0');
  const file = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'api/openapi.json'), 'utf8'));
  assert.deepEqual(doc, file, 'the server serves api/openapi.json');

  const ops = operations();
  assert.deepEqual(ops.map(label).sort(), [...DOCUMENTED].sort(), 'operations of the document vs docs/admin-api.md');
  for (const o of ops) {
    const role = o.op['x-llmgw-min-role'];
    assert.ok(Object.hasOwn(RANK, role), `${label(o)}: x-llmgw-min-role ${role}`);
    assert.equal(role, roleFromTable(o.method, o.path), `${label(o)}: x-llmgw-min-role vs the roles table`);
    if (role === 'none') assert.deepEqual(o.op.security, [], `${label(o)} needs no token`);
    else assert.equal(o.op.security, undefined, `${label(o)} uses the global bearer security`);
    assert.ok(o.op.responses && Object.keys(o.op.responses).length > 0, `${label(o)} documents its responses`);
    if (role !== 'none') assert.ok(o.op.responses['401'], `${label(o)} documents 401`);
    if (RANK[role] > RANK.viewer) assert.ok(o.op.responses['403'], `${label(o)} documents 403`);
  }
  assert.deepEqual(doc.security, [{ bearerAuth: [] }]);
  assert.equal(doc.components.securitySchemes.bearerAuth.scheme, 'bearer');

  // Every $ref resolves inside the document.
  const dangling = [];
  const walk = (v) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      if (typeof v.$ref === 'string') {
        const target = v.$ref.replace(/^#\//, '').split('/').reduce((a, k) => a?.[k], doc);
        if (!v.$ref.startsWith('#/') || target === undefined) dangling.push(v.$ref);
      }
      Object.values(v).forEach(walk);
    }
  };
  walk(doc);
  assert.deepEqual(dangling, [], 'dangling $refs');
});

test('no token: 401 on every operation except those of min-role none', T, async () => {
  const wrong = [];
  for (const o of operations()) {
    const r = await call(o, 'anonymous');
    const none = o.op['x-llmgw-min-role'] === 'none';
    if (r.status >= 500 || (none ? [401, 403].includes(r.status) : r.status !== 401)) {
      wrong.push(`${label(o)} → ${r.status} ${r.text.slice(0, 200)}`);
    } else if (!none) {
      assertOpenAIError(assert, r, 401, 'authentication_error');
    }
  }
  assert.deepEqual(wrong, [], 'operations answering wrongly without a token');
  const spec = await request(s.gw.port, { path: '/admin/openapi.json' });
  assert.equal(spec.status, 200);
});

test('an expired token and a tampered token: 401 on every operation except those of min-role none', T, async () => {
  const wrong = [];
  for (const who of ['expired', 'tampered']) {
    for (const o of operations()) {
      const r = await call(o, who);
      const none = o.op['x-llmgw-min-role'] === 'none';
      if (r.status >= 500 || (none ? [401, 403].includes(r.status) : r.status !== 401)) {
        wrong.push(`${who}: ${label(o)} → ${r.status} ${r.text.slice(0, 200)}`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

test('viewer, editor, admin: 403 below x-llmgw-min-role, never 401/403 at or above', T, async () => {
  const wrong = [];
  let checked = 0;
  for (const who of ['viewer', 'editor', 'admin']) {
    for (const o of operations()) {
      const min = o.op['x-llmgw-min-role'];
      const r = await call(o, who);
      checked += 1;
      const ctx = `${who} ${label(o)} (min ${min}) → ${r.status} ${r.text.slice(0, 200)}`;
      if (r.status >= 500) {
        wrong.push(ctx);
      } else if (RANK[who] < RANK[min]) {
        if (r.status !== 403) wrong.push(ctx);
        else assertOpenAIError(assert, r, 403, 'permission_error');
      } else if ([401, 403, 405].includes(r.status)) {
        wrong.push(ctx);
      }
    }
  }
  assert.ok(checked >= DOCUMENTED.length * 3);
  assert.deepEqual(wrong, [], 'role matrix violations');
  // The matrix sent dummy ids and bodies: the server is still up and nothing broke.
  assert.equal(s.gw.exit, null, `the gateway exited: ${s.gw.stderr.slice(-2000)}`);
  assert.equal((await request(s.gw.port, { path: '/readyz' })).status, 200);
});

test('the read-only operations answer 200 to the roles allowed', T, async () => {
  // Lists and reports need no id: each must actually work, not just avoid 401/403.
  const wrong = [];
  for (const o of operations().filter((x) => x.method === 'get' && !x.path.includes('{'))) {
    for (const who of ['viewer', 'editor', 'admin']) {
      if (RANK[who] < RANK[o.op['x-llmgw-min-role']]) continue;
      const r = await call(o, who);
      if (r.status !== 200) wrong.push(`${who} ${label(o)} → ${r.status} ${r.text.slice(0, 200)}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('methods a path does not list: 405 with an Allow header naming the listed ones', T, async () => {
  const wrong = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    const listed = METHODS.filter((m) => item[m]).map((m) => m.toUpperCase());
    for (const m of METHODS.map((x) => x.toUpperCase()).filter((x) => !listed.includes(x))) {
      const body = ['POST', 'PUT', 'PATCH'].includes(m) ? {} : undefined;
      const r = await adminRequest(s.gw.port, tokens.admin, m, concrete(p), body);
      const allow = String(r.headers.allow ?? '').split(',').map((x) => x.trim().toUpperCase())
        .filter((x) => x && x !== 'HEAD' && x !== 'OPTIONS');
      if (r.status !== 405) {
        wrong.push(`${m} ${p} → ${r.status} (expected 405) ${r.text.slice(0, 200)}`);
      } else if (JSON.stringify([...allow].sort()) !== JSON.stringify([...listed].sort())) {
        wrong.push(`${m} ${p} → Allow: ${r.headers.allow} (expected ${listed.join(', ')})`);
      } else if (!r.json?.error) {
        wrong.push(`${m} ${p} → 405 without an OpenAI error body: ${r.text.slice(0, 200)}`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

test('unknown /admin paths: 404', T, async () => {
  const paths = [
    '/admin/nope', '/admin/keysx', '/admin/auth', '/admin/auth/nope', '/admin/openapi.yaml',
    '/admin/keys/key_00000000000000ff/nope', '/admin/keys/key_00000000000000ff/spend/extra',
    '/admin/users/usr_00000000000000ff/regenerate', '/admin/models/zz/prices/x',
    '/admin/usage/day', '/admin/audit/1/2',
  ];
  const wrong = [];
  for (const p of paths) {
    for (const m of ['GET', 'POST']) {
      const r = await adminRequest(s.gw.port, tokens.admin, m, p, m === 'POST' ? {} : undefined);
      if (r.status !== 404) wrong.push(`${m} ${p} → ${r.status} ${r.text.slice(0, 200)}`);
      else if (!r.json?.error) wrong.push(`${m} ${p} → 404 without an OpenAI error body`);
    }
  }
  assert.deepEqual(wrong, []);
});
