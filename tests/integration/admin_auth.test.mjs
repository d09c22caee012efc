// Admin API sign-in: bootstrap (`llmgw admin create-user`, BOOTSTRAP_ADMIN_* at start), the
// JWT a sign-in returns and its claims, throttling of failed sign-ins (per email, per service
// name, per client address), every kind of token the admin API must refuse (alg none, other
// algorithms, tampering, bad signature, expiry, nbf, a gateway API key), service tokens, and
// subjects disabled, deleted or demoted while their JWT is still valid.
//
// The gateway runs with ADMIN_JWT_SECRET = TEST_JWT_SECRET so the tests can forge tokens with
// node:crypto; a forged token with valid claims is accepted first, so every refusal below is a
// refusal of the one thing changed. Sign-in failures come from their own client addresses
// (127.1.x.y: Linux routes all of 127/8 to lo) so the per-address throttle of one test does
// not leak into the next.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';

import {
  startAdminStack, startGateway, standardConfig, adminRequest, adminLogin, adminLoginRaw, request,
  assertOpenAIError, decodeJwt, signJwt, jwtHmac, jwtClaims, b64url, KEY_RE, TEST_JWT_SECRET,
  ADMIN_EMAIL, ADMIN_PASSWORD, JWT_LIFETIME_S,
} from './harness.mjs';

const T = { timeout: 60_000 };
const ID_USER_RE = /^usr_[0-9a-f]{16}$/;
const ID_TOKEN_RE = /^tok_[0-9a-f]{16}$/;
const HS256 = { alg: 'HS256', typ: 'JWT' };

let s;

before(async () => {
  s = await startAdminStack();
});

after(async () => {
  await s?.close();
});

let addrSeq = 0;
/** A client address no other sign-in of this file used. */
function freshAddress() {
  addrSeq += 1;
  return `127.1.${Math.floor(addrSeq / 200)}.${(addrSeq % 200) + 1}`;
}

const nowS = () => Math.floor(Date.now() / 1000);
const me = (token, opts) => adminRequest(s.gw.port, token, 'GET', '/admin/auth/me', undefined, opts);

/** Creates an admin user through the API (as the bootstrap admin); returns {id, email, password}. */
async function createUser(role, tag = role) {
  const email = `${tag}-${crypto.randomBytes(4).toString('hex')}@llmgw.test`;
  const password = `pw-${crypto.randomBytes(12).toString('hex')}`;
  const r = await s.req('POST', '/admin/users', { email, password, role });
  assert.equal(r.status, 201, `create ${role} user: ${r.text}`);
  assert.match(r.json.id, ID_USER_RE, r.text);
  return { id: r.json.id, email, password };
}

/** Creates a user and signs in (from a fresh address); returns {id, email, password, token}. */
async function userWithToken(role, tag) {
  const u = await createUser(role, tag);
  const login = await adminLogin(s.gw.port, u.email, u.password, { localAddress: freshAddress() });
  return { ...u, token: login.token };
}

/** Asserts the 401 of the admin API for `token` on GET /admin/auth/me and GET /admin/keys. */
async function assertRefused(token, what) {
  for (const p of ['/admin/auth/me', '/admin/keys']) {
    const r = await adminRequest(s.gw.port, token, 'GET', p);
    assert.equal(r.status, 401, `${what}: GET ${p} must be 401, got ${r.status}: ${r.text}`);
    assertOpenAIError(assert, r, 401, 'authentication_error');
  }
}

function assertRetryAfter(r, ctx) {
  const v = r.headers['retry-after'];
  assert.match(String(v ?? ''), /^\d+$/, `${ctx}: Retry-After must be whole seconds, got ${v}`);
  assert.ok(Number(v) >= 1 && Number(v) <= 60, `${ctx}: Retry-After ${v} must be within the minute`);
}

// ---------------------------------------------------------------------------------------------
// Bootstrap and the token a sign-in returns

test('create-user bootstraps an admin; sign-in returns an HS256 JWT with the documented claims', T, async () => {
  const before = nowS();
  const r = await adminLoginRaw(s.gw.port, ADMIN_EMAIL, ADMIN_PASSWORD);
  const after = nowS();
  assert.equal(r.status, 200, r.text);
  const a = r.json;
  assert.equal(a.token_type, 'Bearer', r.text);
  assert.equal(a.expires_in, JWT_LIFETIME_S, r.text);
  assert.equal(typeof a.token, 'string', r.text);
  assert.deepEqual(Object.keys(a.subject).sort(), ['id', 'name', 'role', 'type'], r.text);
  assert.match(a.subject.id, ID_USER_RE, r.text);
  assert.equal(a.subject.type, 'user');
  assert.equal(a.subject.name, ADMIN_EMAIL);
  assert.equal(a.subject.role, 'admin');
  assert.ok(!r.text.includes(ADMIN_PASSWORD), 'the password is never echoed');

  const jwt = decodeJwt(a.token);
  assert.equal(jwt.header.alg, 'HS256', JSON.stringify(jwt.header));
  const c = jwt.payload;
  assert.equal(c.sub, a.subject.id, JSON.stringify(c));
  assert.equal(c.auth_type, 'user', JSON.stringify(c));
  assert.deepEqual(c.roles, ['admin'], JSON.stringify(c));
  assert.ok(Number.isInteger(c.iat) && c.iat >= before - 1 && c.iat <= after + 1, `iat ${c.iat} is now (${before}..${after})`);
  assert.equal(c.exp, c.iat + JWT_LIFETIME_S, `exp = iat + 24 h: ${JSON.stringify(c)}`);
  assert.equal(typeof c.jti, 'string', JSON.stringify(c));
  assert.ok(c.jti.length >= 8, `jti ${c.jti}`);
  assert.equal(Date.parse(a.expires_at), c.exp * 1000, `expires_at ${a.expires_at} is exp ${c.exp}`);
  assert.match(a.expires_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/, 'RFC 3339 UTC');
  // Signed with ADMIN_JWT_SECRET (the premise of every forged token below).
  assert.equal(jwt.signature.toString('base64url'), jwtHmac(jwt.signingInput, TEST_JWT_SECRET),
    'the signature is HMAC-SHA256 under ADMIN_JWT_SECRET (its raw bytes)');

  const again = await adminLogin(s.gw.port, ADMIN_EMAIL, ADMIN_PASSWORD);
  assert.notEqual(decodeJwt(again.token).payload.jti, c.jti, 'every token has its own jti');

  const m = await me(a.token);
  assert.equal(m.status, 200, m.text);
  assert.deepEqual(m.json, { id: a.subject.id, type: 'user', name: ADMIN_EMAIL, role: 'admin' });
  assert.equal(s.admin.id, a.subject.id);
});

test('admin create-user: viewer role, and refusals of a short password, an unknown role and a taken email', T, async () => {
  const email = `cli-viewer-${crypto.randomBytes(3).toString('hex')}@llmgw.test`;
  const password = 'cli viewer password 1';
  const ok = await s.gw.createAdminUser(email, password, { role: 'viewer' });
  assert.ok(!ok.stdout.includes(password) && !ok.stderr.includes(password), 'the CLI never prints the password');
  const login = await adminLogin(s.gw.port, email, password, { localAddress: freshAddress() });
  assert.equal(login.subject.role, 'viewer');
  if (ok.id) assert.equal(login.subject.id, ok.id, 'the id the CLI printed');

  const cases = [
    ['a password of 11 characters', `short-${email}`, '12345678901', 'admin'],
    ['an unknown role', `role-${email}`, 'long enough password', 'root'],
    ['a taken email (other case)', email.toUpperCase(), 'long enough password', 'admin'],
    ['a malformed email', 'not-an-email', 'long enough password', 'admin'],
  ];
  for (const [what, e, p, role] of cases) {
    const r = await s.gw.createAdminUser(e, p, { role, expectOk: false });
    assert.notEqual(r.code, 0, `${what} must be refused: ${r.stdout} ${r.stderr}`);
    const l = await adminLoginRaw(s.gw.port, e, p, { localAddress: freshAddress() });
    assert.ok([400, 401, 422].includes(l.status), `${what}: no user was created: ${l.status} ${l.text}`);
  }
});

test('BOOTSTRAP_ADMIN_EMAIL / _PASSWORD create the first admin at start, only while no enabled admin exists', T, async () => {
  assert.equal(process.env.ADMIN_JWT_SECRET, undefined,
    'this test checks the generated secret file: run it without ADMIN_JWT_SECRET in the environment');
  const first = { email: 'boot@llmgw.test', password: 'bootstrap password 1' };
  const g = await startGateway({ config: standardConfig(s.mock.baseUrl), mockKey: s.mock.apiKey,
    env: { BOOTSTRAP_ADMIN_EMAIL: first.email, BOOTSTRAP_ADMIN_PASSWORD: first.password } });
  try {
    const login = await adminLogin(g.port, first.email, first.password);
    assert.equal(login.subject.role, 'admin', JSON.stringify(login));

    // Without ADMIN_JWT_SECRET the secret is generated into DATA_DIR/admin-jwt.secret (0600)...
    const secretPath = `${g.dataDir}/admin-jwt.secret`;
    assert.ok(fs.existsSync(secretPath), `${secretPath} must exist`);
    const st = fs.statSync(secretPath);
    assert.equal(st.mode & 0o777, 0o600, `mode of admin-jwt.secret: ${(st.mode & 0o777).toString(8)}`);
    assert.ok(st.size >= 32, `admin-jwt.secret holds at least 32 bytes (${st.size})`);
    const secretBefore = fs.readFileSync(secretPath);
    assert.ok(!decodeJwt(login.token).signature.equals(
      crypto.createHmac('sha256', TEST_JWT_SECRET).update(decodeJwt(login.token).signingInput).digest()),
    'not signed with the test secret (it is not set here)');

    // ...and reused: a token issued before a restart still works after it.
    const ex = await g.stop();
    assert.deepEqual(ex, { code: 0, signal: null }, g.stderr.slice(-2000));
    // A second bootstrap identity while an enabled admin exists is ignored.
    g.env.BOOTSTRAP_ADMIN_EMAIL = 'boot2@llmgw.test';
    g.env.BOOTSTRAP_ADMIN_PASSWORD = 'bootstrap password 2';
    await g.serve();
    assert.ok(fs.readFileSync(secretPath).equals(secretBefore), 'the secret file is reused, not rewritten');
    const m = await adminRequest(g.port, login.token, 'GET', '/admin/auth/me');
    assert.equal(m.status, 200, `a token from before the restart: ${m.text}`);
    const second = await adminLoginRaw(g.port, 'boot2@llmgw.test', 'bootstrap password 2');
    assert.equal(second.status, 401, `BOOTSTRAP_ADMIN_* must not apply while an admin exists: ${second.text}`);
    const users = await adminRequest(g.port, login.token, 'GET', '/admin/users');
    assert.equal(users.status, 200, users.text);
    assert.deepEqual(users.json.data.map((u) => u.email), [first.email], users.text);
    assert.ok(!users.text.includes(first.password), 'no password in the user list');
  } finally {
    await g.cleanup();
  }
});

test('an ADMIN_JWT_SECRET shorter than 32 bytes refuses to start', T, async () => {
  const g = await startGateway({ config: standardConfig(s.mock.baseUrl), mockKey: s.mock.apiKey, serve: false });
  try {
    g.env.ADMIN_JWT_SECRET = 'only-31-bytes-long-secret-12345';
    assert.equal(Buffer.byteLength(g.env.ADMIN_JWT_SECRET), 31);
    const r = await g.serveExpectExit();
    assert.ok(r.exited, `must not start with a 31-byte secret; stderr: ${r.stderr}`);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /ADMIN_JWT_SECRET/, 'stderr names the variable');
    assert.ok(!r.stderr.includes(g.env.ADMIN_JWT_SECRET), 'stderr never prints the secret');
  } finally {
    await g.cleanup();
  }
});

// ---------------------------------------------------------------------------------------------
// Failed sign-ins

test('a wrong password is 401, audited as login_failed without the password', T, async () => {
  const addr = freshAddress();
  const wrong = `wrong-password-${crypto.randomBytes(6).toString('hex')}`;
  const r = await adminLoginRaw(s.gw.port, ADMIN_EMAIL, wrong, { localAddress: addr });
  assertOpenAIError(assert, r, 401, 'authentication_error');
  assert.ok(!r.text.includes(wrong), 'the password is not echoed');
  assert.equal(r.json.token, undefined);
  const unknown = await adminLoginRaw(s.gw.port, 'nobody@llmgw.test', wrong, { localAddress: addr });
  assertOpenAIError(assert, unknown, 401, 'authentication_error');

  const audit = await s.req('GET', '/admin/audit?limit=500');
  assert.equal(audit.status, 200, audit.text);
  const failed = audit.json.data.filter((x) => x.action === 'login_failed');
  assert.ok(failed.length >= 2, `login_failed records: ${audit.text.slice(0, 2000)}`);
  assert.ok(failed.some((x) => String(x.client_ip).includes(addr)), `a login_failed record from ${addr}: ${JSON.stringify(failed)}`);
  assert.ok(!audit.text.includes(wrong), 'the audit trail never holds a password');
  assert.ok(!audit.text.includes(ADMIN_PASSWORD), 'the audit trail never holds a password');
});

test('5 failures for one email: the 6th sign-in is 429 with Retry-After, even with the right password', T, async () => {
  const u = await createUser('editor', 'throttled');
  const other = await createUser('editor', 'unthrottled');
  for (let i = 1; i <= 5; i++) {
    // Each from its own address: only the per-email count reaches 5.
    const r = await adminLoginRaw(s.gw.port, u.email, `wrong password ${i}`, { localAddress: freshAddress() });
    assertOpenAIError(assert, r, 401, 'authentication_error');
  }
  for (const [what, pw] of [['the right password', u.password], ['a wrong password', 'wrong password 6']]) {
    const r = await adminLoginRaw(s.gw.port, u.email, pw, { localAddress: freshAddress() });
    assertOpenAIError(assert, r, 429, 'rate_limit_error');
    assertRetryAfter(r, what);
    assert.equal(r.json.token, undefined, `${what}: no token while throttled`);
  }
  // The same email in another case is the same account.
  const upper = await adminLoginRaw(s.gw.port, u.email.toUpperCase(), u.password, { localAddress: freshAddress() });
  assert.equal(upper.status, 429, `emails compare without case: ${upper.text}`);
  // Another account is not affected.
  const ok = await adminLoginRaw(s.gw.port, other.email, other.password, { localAddress: freshAddress() });
  assert.equal(ok.status, 200, ok.text);
});

test('5 failures for one service name: token sign-in is 429 even with the right secret', T, async () => {
  const t = await s.req('POST', '/admin/tokens', { service_name: `throttled-svc-${crypto.randomBytes(3).toString('hex')}`, role: 'viewer' });
  assert.equal(t.status, 201, t.text);
  for (let i = 1; i <= 5; i++) {
    const r = await request(s.gw.port, { method: 'POST', path: '/admin/auth/token', localAddress: freshAddress(),
      body: { service_name: t.json.service_name, token: `wrong-secret-${i}` } });
    assertOpenAIError(assert, r, 401, 'authentication_error');
  }
  const r = await request(s.gw.port, { method: 'POST', path: '/admin/auth/token', localAddress: freshAddress(),
    body: { service_name: t.json.service_name, token: t.json.token } });
  assertOpenAIError(assert, r, 429, 'rate_limit_error');
  assertRetryAfter(r, 'service token');
});

test('5 failures from one client address across different emails throttle every sign-in from it', T, async () => {
  const addr = freshAddress();
  for (let i = 1; i <= 5; i++) {
    const r = await adminLoginRaw(s.gw.port, `spray-${i}-${crypto.randomBytes(3).toString('hex')}@llmgw.test`,
      `spray password ${i}`, { localAddress: addr });
    assertOpenAIError(assert, r, 401, 'authentication_error');
  }
  const blocked = await adminLoginRaw(s.gw.port, ADMIN_EMAIL, ADMIN_PASSWORD, { localAddress: addr });
  assertOpenAIError(assert, blocked, 429, 'rate_limit_error');
  assertRetryAfter(blocked, 'per address');
  const t = await s.req('POST', '/admin/tokens', { service_name: `spray-svc-${crypto.randomBytes(3).toString('hex')}`, role: 'viewer' });
  assert.equal(t.status, 201, t.text);
  const tok = await request(s.gw.port, { method: 'POST', path: '/admin/auth/token', localAddress: addr,
    body: { service_name: t.json.service_name, token: t.json.token } });
  assert.equal(tok.status, 429, `token sign-in from the throttled address: ${tok.text}`);
  // The same account from another address is fine: the throttle is the address's.
  const elsewhere = await adminLoginRaw(s.gw.port, ADMIN_EMAIL, ADMIN_PASSWORD, { localAddress: freshAddress() });
  assert.equal(elsewhere.status, 200, elsewhere.text);
  // A request with a valid JWT from the throttled address is not a sign-in: it still works.
  const m = await me(s.admin.token, { localAddress: addr });
  assert.equal(m.status, 200, m.text);
});

// ---------------------------------------------------------------------------------------------
// Tokens the admin API must refuse

/** The `cv` claim the gateway puts in a subject's tokens: a fingerprint of its stored hash. */
async function cvOf(id, table = 'admin_users', column = 'password_hash') {
  const [row] = await s.gw.sql(`SELECT ${column} AS h FROM ${table} WHERE id = '${id}'`);
  return crypto.createHash('sha256').update(row.h).digest('hex').slice(0, 16);
}

test('a forged token with valid claims is accepted (the premise of the refusals below)', T, async () => {
  const token = signJwt(HS256, jwtClaims(s.admin.id, { cv: await cvOf(s.admin.id) }));
  const m = await me(token);
  assert.equal(m.status, 200, `a token signed with ADMIN_JWT_SECRET with valid claims: ${m.text}`);
  assert.equal(m.json.id, s.admin.id);
});

test('JWT refused (401): alg none, other algorithms, tampering, bad signatures, expiry, nbf, unknown subjects', T, async () => {
  const viewer = await userWithToken('viewer', 'jwt-viewer');
  const good = decodeJwt(viewer.token);
  const [h64, p64, sig64] = viewer.token.split('.');
  const cv = await cvOf(s.admin.id);
  const claims = () => jwtClaims(s.admin.id, { cv });
  const now = nowS();
  const flipMiddle = (str) => {
    const i = Math.floor(str.length / 2);
    return `${str.slice(0, i)}${str[i] === 'A' ? 'B' : 'A'}${str.slice(i + 1)}`;
  };
  const cases = {
    'alg none, no signature': signJwt({ alg: 'none', typ: 'JWT' }, claims(), { signature: '' }),
    'alg None, no signature': signJwt({ alg: 'None', typ: 'JWT' }, claims(), { signature: '' }),
    'alg NONE, no signature': signJwt({ alg: 'NONE', typ: 'JWT' }, claims(), { signature: '' }),
    'alg none with an HS256 signature': signJwt({ alg: 'none', typ: 'JWT' }, claims()),
    'no alg': signJwt({ typ: 'JWT' }, claims()),
    'alg HS512 (signed with the secret)': signJwt({ alg: 'HS512', typ: 'JWT' }, claims(), { hash: 'sha512' }),
    'alg HS384 (signed with the secret)': signJwt({ alg: 'HS384', typ: 'JWT' }, claims(), { hash: 'sha384' }),
    'alg RS256 with an HMAC-SHA256 signature': signJwt({ alg: 'RS256', typ: 'JWT' }, claims()),
    'alg ES256 with an HMAC-SHA256 signature': signJwt({ alg: 'ES256', typ: 'JWT' }, claims()),
    'alg hs256 (lower case)': signJwt({ alg: 'hs256', typ: 'JWT' }, claims()),
    'tampered payload: roles raised to admin': `${h64}.${b64url({ ...good.payload, roles: ['admin'] })}.${sig64}`,
    'tampered payload: sub switched to the admin': `${h64}.${b64url({ ...good.payload, sub: s.admin.id })}.${sig64}`,
    'tampered payload: exp extended': `${h64}.${b64url({ ...good.payload, exp: good.payload.exp + 3600 })}.${sig64}`,
    'tampered header: typ changed': `${b64url({ ...good.header, typ: 'XYZ' })}.${p64}.${sig64}`,
    'a changed signature byte': `${h64}.${p64}.${flipMiddle(sig64)}`,
    'signed with another secret': signJwt(HS256, claims(), { secret: `${TEST_JWT_SECRET}-other` }),
    'an empty signature': `${h64}.${p64}.`,
    'a truncated signature': `${h64}.${p64}.${sig64.slice(0, 20)}`,
    'expired a minute ago': signJwt(HS256, jwtClaims(s.admin.id, { iat: now - JWT_LIFETIME_S - 60, exp: now - 60 })),
    'expired long ago': signJwt(HS256, jwtClaims(s.admin.id, { iat: 1_000_000_000, exp: 1_000_086_400 })),
    'nbf an hour ahead': signJwt(HS256, jwtClaims(s.admin.id, { nbf: now + 3600 })),
    'sub of no user': signJwt(HS256, jwtClaims('usr_0000000000000000')),
    'auth_type token with a user id': signJwt(HS256, jwtClaims(s.admin.id, { authType: 'token' })),
    'not a JWT': 'abc',
    'two parts': `${h64}.${p64}`,
    'four parts': `${viewer.token}.${sig64}`,
    'a payload that is not JSON': signJwt(HS256, b64url('not json')),
  };
  // The viewer's own token works: the refusals are of the change alone.
  const control = await me(viewer.token);
  assert.equal(control.status, 200, control.text);
  for (const [what, token] of Object.entries(cases)) await assertRefused(token, what);

  // Other places for credentials: none opens the admin API.
  const basic = await request(s.gw.port, { path: '/admin/auth/me',
    headers: { authorization: `Basic ${Buffer.from(`${ADMIN_EMAIL}:${ADMIN_PASSWORD}`).toString('base64')}` } });
  assertOpenAIError(assert, basic, 401, 'authentication_error');
  const none = await request(s.gw.port, { path: '/admin/auth/me' });
  assertOpenAIError(assert, none, 401, 'authentication_error');
});

test('a JWT signed with the secret but carrying roles above the subject\'s role gets the subject\'s role', T, async () => {
  const viewer = await createUser('viewer', 'forged-roles');
  const token = signJwt(HS256, jwtClaims(viewer.id, { roles: ['admin'], cv: await cvOf(viewer.id) }));
  const m = await me(token);
  assert.equal(m.status, 200, m.text);
  assert.equal(m.json.role, 'viewer', `the role applied is the subject's current role: ${m.text}`);
  const users = await adminRequest(s.gw.port, token, 'GET', '/admin/users');
  assertOpenAIError(assert, users, 403, 'permission_error');
  const write = await adminRequest(s.gw.port, token, 'POST', '/admin/keys', { name: 'forged' });
  assertOpenAIError(assert, write, 403, 'permission_error');
});

test('a gateway API key (sk-llmgw-…) as bearer is 401 on /admin', T, async () => {
  const created = await s.req('POST', '/admin/keys', { name: 'not-an-admin-credential' });
  assert.equal(created.status, 201, created.text);
  const key = created.json.key;
  assert.match(key, KEY_RE);
  const cli = await s.gw.createKey('cli-key');
  for (const k of [key, cli.key]) {
    await assertRefused(k, 'a gateway API key');
    const viaApiKeyHeader = await request(s.gw.port, { path: '/admin/keys', headers: { 'api-key': k } });
    assertOpenAIError(assert, viaApiKeyHeader, 401, 'authentication_error');
    const write = await adminRequest(s.gw.port, k, 'POST', '/admin/keys', { name: 'x' });
    assertOpenAIError(assert, write, 401, 'authentication_error');
  }
});

// ---------------------------------------------------------------------------------------------
// Service tokens and subjects that change under a valid JWT

test('a service token created by an admin signs in with /admin/auth/token', T, async () => {
  const service = `ci-${crypto.randomBytes(4).toString('hex')}`;
  const c = await s.req('POST', '/admin/tokens', { service_name: service, role: 'editor' });
  assert.equal(c.status, 201, c.text);
  assert.match(c.json.id, ID_TOKEN_RE, c.text);
  assert.equal(typeof c.json.token, 'string', c.text);
  assert.ok(c.json.token.length >= 20, `a token secret of ${c.json.token.length} characters`);

  const sign = (token, localAddress) => request(s.gw.port, { method: 'POST', path: '/admin/auth/token',
    body: { service_name: service, token }, localAddress });
  const r = await sign(c.json.token);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.token_type, 'Bearer');
  assert.equal(r.json.expires_in, JWT_LIFETIME_S);
  assert.deepEqual(r.json.subject, { id: c.json.id, type: 'token', name: service, role: 'editor' });
  const claims = decodeJwt(r.json.token).payload;
  assert.equal(claims.sub, c.json.id);
  assert.equal(claims.auth_type, 'token');
  assert.deepEqual(claims.roles, ['editor']);
  assert.equal(claims.exp, claims.iat + JWT_LIFETIME_S);

  const jwt = r.json.token;
  const m = await me(jwt);
  assert.deepEqual(m.json, { id: c.json.id, type: 'token', name: service, role: 'editor' });
  const k = await adminRequest(s.gw.port, jwt, 'POST', '/admin/keys', { name: 'made-by-a-service' });
  assert.equal(k.status, 201, `an editor token may create keys: ${k.text}`);
  const users = await adminRequest(s.gw.port, jwt, 'GET', '/admin/users');
  assertOpenAIError(assert, users, 403, 'permission_error');

  const wrong = await sign('not-the-secret', freshAddress());
  assertOpenAIError(assert, wrong, 401, 'authentication_error');
  const unknown = await request(s.gw.port, { method: 'POST', path: '/admin/auth/token', localAddress: freshAddress(),
    body: { service_name: `${service}-nope`, token: c.json.token } });
  assertOpenAIError(assert, unknown, 401, 'authentication_error');
  // A user's email and password are not a service token, nor the reverse.
  const crossed = await adminLoginRaw(s.gw.port, service, c.json.token, { localAddress: freshAddress() });
  assert.ok([400, 401, 422].includes(crossed.status), `a service token on /admin/auth/login: ${crossed.status} ${crossed.text}`);

  // Disabled: its JWT stops working at once, and it cannot sign in.
  const off = await s.req('PATCH', `/admin/tokens/${c.json.id}`, { enabled: false });
  assert.equal(off.status, 200, off.text);
  assert.equal(off.json.enabled, false);
  await assertRefused(jwt, 'the JWT of a disabled service token');
  const again = await sign(c.json.token, freshAddress());
  assertOpenAIError(assert, again, 401, 'authentication_error');
  // Deleted: the same.
  const on = await s.req('PATCH', `/admin/tokens/${c.json.id}`, { enabled: true });
  assert.equal(on.status, 200, on.text);
  const jwt2 = (await sign(c.json.token, freshAddress())).json?.token;
  assert.equal(typeof jwt2, 'string', 're-enabled: signs in again');
  const del = await s.req('DELETE', `/admin/tokens/${c.json.id}`);
  assert.equal(del.status, 200, del.text);
  await assertRefused(jwt2, 'the JWT of a deleted service token');
});

test('a user disabled or deleted stops working at once, even with a valid JWT', T, async () => {
  const u = await userWithToken('editor', 'to-disable');
  assert.equal((await me(u.token)).status, 200);
  const off = await s.req('PATCH', `/admin/users/${u.id}`, { enabled: false });
  assert.equal(off.status, 200, off.text);
  assert.equal(off.json.enabled, false);
  await assertRefused(u.token, 'the JWT of a disabled user');
  const write = await adminRequest(s.gw.port, u.token, 'POST', '/admin/keys', { name: 'x' });
  assertOpenAIError(assert, write, 401, 'authentication_error');
  const login = await adminLoginRaw(s.gw.port, u.email, u.password, { localAddress: freshAddress() });
  assertOpenAIError(assert, login, 401, 'authentication_error');

  const d = await userWithToken('admin', 'to-delete');
  assert.equal((await adminRequest(s.gw.port, d.token, 'GET', '/admin/users')).status, 200);
  const del = await s.req('DELETE', `/admin/users/${d.id}`);
  assert.equal(del.status, 200, del.text);
  assert.deepEqual(del.json, { id: d.id, object: 'admin_user', deleted: true });
  await assertRefused(d.token, 'the JWT of a deleted user');
  const relogin = await adminLoginRaw(s.gw.port, d.email, d.password, { localAddress: freshAddress() });
  assertOpenAIError(assert, relogin, 401, 'authentication_error');
});

test('a demoted user loses rights at once; a promoted one gains them at once', T, async () => {
  const u = await userWithToken('editor', 'to-demote');
  const k = await adminRequest(s.gw.port, u.token, 'POST', '/admin/keys', { name: 'before-demotion' });
  assert.equal(k.status, 201, k.text);
  const demote = await s.req('PATCH', `/admin/users/${u.id}`, { role: 'viewer' });
  assert.equal(demote.status, 200, demote.text);
  assert.equal(demote.json.role, 'viewer');
  const after = await adminRequest(s.gw.port, u.token, 'POST', '/admin/keys', { name: 'after-demotion' });
  assertOpenAIError(assert, after, 403, 'permission_error');
  const patch = await adminRequest(s.gw.port, u.token, 'PATCH', `/admin/keys/${k.json.id}`, { name: 'renamed' });
  assertOpenAIError(assert, patch, 403, 'permission_error');
  const read = await adminRequest(s.gw.port, u.token, 'GET', '/admin/keys');
  assert.equal(read.status, 200, `a viewer still reads: ${read.text}`);
  assert.equal((await me(u.token)).json.role, 'viewer', 'auth/me shows the current role');

  const promote = await s.req('PATCH', `/admin/users/${u.id}`, { role: 'admin' });
  assert.equal(promote.status, 200, promote.text);
  const users = await adminRequest(s.gw.port, u.token, 'GET', '/admin/users');
  assert.equal(users.status, 200, `promoted to admin with the same JWT: ${users.text}`);
});

test('a new password or token secret ends the tokens issued before it', T, async () => {
  const u = await userWithToken('editor', 'to-repassword');
  assert.equal((await me(u.token)).status, 200);
  // Without the fingerprint of the current credential, a correctly signed token is refused.
  const noCv = signJwt(HS256, jwtClaims(u.id, { roles: ['editor'] }));
  await assertRefused(noCv, 'a token without cv');
  const changed = await s.req('PATCH', `/admin/users/${u.id}`, { password: 'a brand new passphrase' });
  assert.equal(changed.status, 200, changed.text);
  await assertRefused(u.token, 'a token issued before the password changed');
  const fresh = await adminLoginRaw(s.gw.port, u.email, 'a brand new passphrase', { localAddress: freshAddress() });
  assert.equal(fresh.status, 200, fresh.text);
  assert.equal((await me(fresh.json.token)).status, 200);

  const service = `rot-${crypto.randomBytes(4).toString('hex')}`;
  const c = await s.req('POST', '/admin/tokens', { service_name: service, role: 'viewer' });
  assert.equal(c.status, 201, c.text);
  const signed = await request(s.gw.port, { method: 'POST', path: '/admin/auth/token',
    body: { service_name: service, token: c.json.token }, localAddress: freshAddress() });
  assert.equal(signed.status, 200, signed.text);
  const regen = await s.req('POST', `/admin/tokens/${c.json.id}/regenerate`);
  assert.equal(regen.status, 200, regen.text);
  await assertRefused(signed.json.token, 'a JWT of a regenerated service token');
});
