// The gateway's upstream client over TLS and through forward proxies (src/http/upstream.cpp,
// docs/configuration.md "Forward proxies" and "TLS"):
// - https:// upstreams are verified against OpenSSL's default paths (SSL_CERT_FILE), with the
//   host name of base_url checked and sent as SNI (not for IP literals);
// - an untrusted or mismatching certificate is a 502 upstream_error and the gateway stays up;
// - HTTPS_PROXY / HTTP_PROXY tunnel with CONNECT host:port (Proxy-Authorization from the URL's
//   userinfo), TLS is still verified end to end, NO_PROXY matches the host of base_url, a
//   non-200 CONNECT answer is a 502, and an https:// proxy URL stops the gateway at start-up.
//
// A throw-away CA and server certificates are made with the openssl command-line tool in a
// temporary directory; the mock upstream listens with them over TLS. Everything is on
// 127.0.0.1 (`localhost` resolves there) on free ports.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import {
  OpenAIMock, startGateway, freePort, chat, chatBody, request, stream, sseData, assertOpenAIError,
  waitUntil,
} from './harness.mjs';
import { expectedChatStreamTexts, sseBytes, DEFAULT_REPLY } from '../mock/openai_mock.mjs';

const T = { timeout: 20_000 };
const UPSTREAM_MODEL = 'gpt-4o-mini';
const CONNECT_TIMEOUT_MS = 3_000;
// user:pass → Basic dXNlcjpwYXNz (the brief's credential); the HTTP_PROXY one differs so the
// two variables cannot be confused.
const HTTPS_PROXY_AUTH = 'Basic dXNlcjpwYXNz';
const HTTP_PROXY_AUTH = `Basic ${Buffer.from('huser:hp@ss').toString('base64')}`;

// Every gateway of this file starts from a clean slate: no proxy or CA variables inherited
// from the environment the tests run in (undefined removes a variable from the child's env).
const CLEAN_ENV = Object.freeze({
  HTTPS_PROXY: undefined, https_proxy: undefined, HTTP_PROXY: undefined, http_proxy: undefined,
  NO_PROXY: undefined, no_proxy: undefined, ALL_PROXY: undefined, all_proxy: undefined,
  SSL_CERT_FILE: undefined, SSL_CERT_DIR: undefined,
});

let tmpDir;
let pki; // {ca, localhost: {key, cert}, dnsOnly: {…}, other: {…}}
const mocks = {}; // tls (localhost + 127.0.0.1), dnsOnly (DNS:localhost only), other (otherhost), plain (http)
let gwCa; // SSL_CERT_FILE = the test CA, no proxy
const proxies = [];

// ---------------------------------------------------------------------------------------------
// Certificates

function openssl(args, cwd) {
  try {
    return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  } catch (e) {
    if (e.code === 'ENOENT') {
      throw new Error('the openssl command-line tool is not installed (apt-get install -y openssl); ' +
        'this test needs it to make a throw-away CA and server certificates');
    }
    throw new Error(`openssl ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A leaf certificate for `cn` with `san`, signed by the CA in `dir`; returns PEM {key, cert}. */
function leaf(dir, name, cn, san) {
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n' +
    `extendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
  openssl(['req', '-new', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-set_serial', `0x${crypto.randomBytes(8).toString('hex')}`, '-days', '1', '-extfile', ext,
    '-out', `${name}.pem`], dir);
  return { key: fs.readFileSync(path.join(dir, `${name}.key`)), cert: fs.readFileSync(path.join(dir, `${name}.pem`)) };
}

function makePki(dir) {
  openssl(['version'], dir); // a missing binary fails here, with the message above
  openssl(['req', '-x509', ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1',
    '-subj', '/CN=llmgw integration test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return {
    ca: path.join(dir, 'ca.pem'),
    localhost: leaf(dir, 'localhost', 'localhost', 'DNS:localhost,IP:127.0.0.1'),
    dnsOnly: leaf(dir, 'dnsonly', 'localhost', 'DNS:localhost'),
    other: leaf(dir, 'otherhost', 'otherhost', 'DNS:otherhost'),
  };
}

// ---------------------------------------------------------------------------------------------
// A forward proxy that only speaks CONNECT (what the gateway sends for every upstream)

class ConnectProxy {
  /**
   * @param {{deny?: boolean, junk?: boolean}} opts deny: answer every CONNECT with 407; junk:
   *   answer 200 followed, in the same write, by bytes that look like an HTTP response
   */
  constructor({ deny = false, junk = false } = {}) {
    this.deny = deny;
    this.junk = junk;
    this.seen = []; // {line, target, headers, rawHeaders}
    this.plainRequests = []; // anything that was not CONNECT (the gateway must never send it)
    this.sockets = new Set();
    this.server = http.createServer((req, res) => {
      this.plainRequests.push(`${req.method} ${req.url} HTTP/${req.httpVersion}`);
      res.writeHead(405, { 'content-type': 'text/plain', connection: 'close' });
      res.end('this test proxy only does CONNECT\n');
    });
    this.server.on('connection', (s) => this.#track(s));
    this.server.on('connect', (req, sock, head) => this.#connect(req, sock, head));
  }

  #track(s) {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => {});
  }

  #connect(req, sock, head) {
    this.seen.push({ line: `${req.method} ${req.url} HTTP/${req.httpVersion}`, target: req.url,
      headers: { ...req.headers }, rawHeaders: [...req.rawHeaders] });
    if (this.deny) {
      sock.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="llmgw-test"\r\n' +
        'Content-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    if (this.junk) {
      const fake = '{"injected":true}';
      sock.write('HTTP/1.1 200 Connection established\r\n\r\n' +
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${fake.length}\r\n\r\n${fake}`);
      sock.setTimeout(5_000, () => sock.destroy());
      return;
    }
    const m = /^(.+):(\d+)$/.exec(req.url);
    if (!m) {
      sock.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    const up = net.connect({ host: '127.0.0.1', port: Number(m[2]) });
    this.#track(up);
    up.once('connect', () => {
      sock.write('HTTP/1.1 200 Connection established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(sock);
      sock.pipe(up);
    });
    up.on('close', () => sock.destroy());
    sock.on('close', () => up.destroy());
  }

  async start() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this;
  }

  get port() {
    return this.server.address().port;
  }

  url(userinfo = '') {
    return `http://${userinfo ? `${userinfo}@` : ''}127.0.0.1:${this.port}`;
  }

  clear() {
    this.seen = [];
    this.plainRequests = [];
  }

  async stop() {
    await new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }
}

async function newProxy(opts) {
  const p = await new ConnectProxy(opts).start();
  proxies.push(p);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Gateways

/** One openai provider per [name, base_url] (model `name` → upstream gpt-4o-mini), plus echo. */
function configFor(providers) {
  return {
    providers: [
      ...providers.map(([name, baseUrl]) => ({ name, type: 'openai', base_url: baseUrl,
        api_key: { raw: '${MOCK_KEY}' }, connect_timeout_ms: CONNECT_TIMEOUT_MS })),
      { name: 'local', type: 'echo' },
    ],
    models: [
      ...providers.map(([name]) => ({ name, provider: name, upstream_model: UPSTREAM_MODEL })),
      { name: 'echo-chat', provider: 'local' },
    ],
  };
}

const httpsUrl = (host, mock) => `https://${host}:${mock.port}/v1`;

async function gateway(providers, env) {
  return startGateway({ config: configFor(providers), env: { ...CLEAN_ENV, ...env }, keys: { main: {} },
    mockKey: mocks.tls.apiKey });
}

/** SIGTERM, a clean exit (so a sanitizer build reports leaks), then cleanup's sanitizer check. */
async function stopGateway(gw) {
  try {
    const ex = await gw.stop();
    assert.deepEqual(ex, { code: 0, signal: null }, `exit after SIGTERM; stderr tail:\n${gw.stderr.slice(-2000)}`);
  } finally {
    await gw.cleanup();
  }
}

/** Runs `fn(gw, key)` against a fresh gateway and always stops it (sanitizer check included). */
async function withGateway(providers, env, fn) {
  const gw = await gateway(providers, env);
  try {
    await fn(gw, gw.keys.main.key);
  } catch (e) {
    e.message += `\n--- gateway stderr (tail) ---\n${gw.stderr.slice(-3000)}`;
    await gw.cleanup().catch((c) => { e.message += `\n--- and on clean-up ---\n${c.message}`; });
    throw e;
  }
  await stopGateway(gw);
}

// ---------------------------------------------------------------------------------------------
// Checks

function clearAll() {
  for (const m of Object.values(mocks)) m.clearRequests();
  for (const p of proxies) p.clear();
}

/** A JSON chat through `model` answers 200 with the mock's reply; returns the mock's record. */
async function assertChatWorks(gw, key, model, mock, label = model) {
  const before = mock.recorded().length;
  const res = await chat(gw.port, key, chatBody(model, `json via ${label}`));
  assert.equal(res.status, 200, `${label}: JSON chat: ${res.text}`);
  assert.equal(res.json?.object, 'chat.completion', `${label}: ${res.text}`);
  assert.equal(res.json.choices[0].message.content, DEFAULT_REPLY, `${label}: reply`);
  assert.equal(res.json.model, UPSTREAM_MODEL);
  const recs = mock.recorded();
  assert.equal(recs.length, before + 1, `${label}: the mock must have received exactly one request`);
  const rec = recs.at(-1);
  assert.equal(rec.path, '/v1/chat/completions', `${label}: origin-form path upstream`);
  assert.equal(rec.headers.authorization, `Bearer ${mock.apiKey}`, `${label}: provider key`);
  return rec;
}

/** A streamed chat through `model` gives exactly the bytes OpenAI would send; returns the record. */
async function assertStreamWorks(gw, key, model, mock, label = model) {
  const body = chatBody(model, `stream via ${label} [mock:created=1700000300] [mock:chunks=5]`, { stream: true });
  const r = await stream(gw.port, { body, headers: { authorization: `Bearer ${key}` }, timeoutMs: 8_000 });
  assert.equal(r.status, 200, `${label}: stream: ${r.raw}`);
  assert.match(String(r.headers['content-type']), /^text\/event-stream/);
  assert.ok(r.complete, `${label}: the stream did not end cleanly: ${r.error}`);
  assert.equal(sseData(r.raw).at(-1), '[DONE]', `${label}: stream must end with [DONE]`);
  assert.equal(r.raw, sseBytes(expectedChatStreamTexts({ ...body, model: UPSTREAM_MODEL })),
    `${label}: client stream differs from what OpenAI would have sent`);
  const rec = mock.recorded().at(-1);
  assert.equal(JSON.parse(rec.body_text).stream, true, `${label}: the upstream request was not a stream`);
  return rec;
}

/** JSON and stream through `model` both answer 502 upstream_error (OpenAI-shaped). */
async function assert502(gw, key, model, label) {
  const t0 = Date.now();
  const res = await chat(gw.port, key, chatBody(model, `must fail: ${label}`), { timeoutMs: 8_000 });
  assertOpenAIError(assert, res, 502, 'upstream_error');
  assert.ok(Date.now() - t0 < CONNECT_TIMEOUT_MS, `${label}: 502 after ${Date.now() - t0} ms: a handshake ` +
    `failure must be reported at once, not after connect_timeout_ms`);
  assert.ok(!res.text.includes(mocks.tls.apiKey), `${label}: the provider key leaked into the error`);
  const st = await stream(gw.port, { body: chatBody(model, `must fail too: ${label}`, { stream: true }),
    headers: { authorization: `Bearer ${key}` }, timeoutMs: 8_000 });
  assert.equal(st.status, 502, `${label}: streaming request: ${st.raw}`);
  let parsed;
  try {
    parsed = JSON.parse(st.raw);
  } catch {
    assert.fail(`${label}: the streaming 502 must be an OpenAI JSON error, got ${JSON.stringify(st.raw)}`);
  }
  assert.equal(parsed.error?.type, 'upstream_error', `${label}: ${st.raw}`);
}

/** The gateway still answers: /healthz, and a chat on the echo provider. */
async function assertAlive(gw, key) {
  assert.equal(gw.exit, null, `the gateway exited: ${JSON.stringify(gw.exit)}`);
  const h = await request(gw.port, { path: '/healthz', timeoutMs: 3_000 });
  assert.equal(h.status, 200, 'the gateway must stay up');
  const r = await chat(gw.port, key, chatBody('echo-chat', 'still there?'));
  assert.equal(r.status, 200, `a request after the failure: ${r.text}`);
}

/**
 * The mock saw TLS handshakes fail (the gateway rejected the certificate; `alert`: the TLS
 * alert it must have sent) and no request; the gateway logged the failed handshake.
 */
async function assertHandshakeRejected(gw, mock, label, alert = undefined) {
  await waitUntil(() => mock.tlsErrors.length > 0, 3_000,
    `${label}: the mock to see a failed TLS handshake (tlsErrors: ${JSON.stringify(mock.tlsErrors)})`);
  if (alert) {
    for (const e of mock.tlsErrors) assert.match(e, alert, `${label}: alert the gateway sent`);
  }
  assert.deepEqual(mock.recorded(), [], `${label}: no request may reach an upstream that failed verification`);
  await waitUntil(() => logged(gw, 'TLS handshake with upstream failed')
    .some((l) => l.upstream === `localhost:${mock.port}` || l.upstream === `127.0.0.1:${mock.port}`), 2_000,
  `${label}: a "TLS handshake with upstream failed" log line for port ${mock.port}; stderr:\n${gw.stderr.slice(-2000)}`);
}

function logged(gw, msg) {
  return gw.logLines().filter((l) => l.msg === msg);
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  tmpDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'llmgw-tls-'));
  pki = makePki(tmpDir);
  mocks.tls = new OpenAIMock({ tls: pki.localhost });
  mocks.dnsOnly = new OpenAIMock({ tls: pki.dnsOnly });
  mocks.other = new OpenAIMock({ tls: pki.other });
  mocks.plain = new OpenAIMock();
  for (const m of Object.values(mocks)) await m.start();
  gwCa = await gateway([
    ['tls-name', httpsUrl('localhost', mocks.tls)],
    ['tls-ip', httpsUrl('127.0.0.1', mocks.tls)],
    ['tls-ip-dns-only-cert', httpsUrl('127.0.0.1', mocks.dnsOnly)],
    ['tls-otherhost-cert', httpsUrl('localhost', mocks.other)],
  ], { SSL_CERT_FILE: pki.ca });
});

after(async () => {
  try {
    if (gwCa) await stopGateway(gwCa);
  } finally {
    for (const m of Object.values(mocks)) await m.stop();
    for (const p of proxies) await p.stop();
    if (tmpDir && !process.env.LLMGW_KEEP_TMP) await fsp.rm(tmpDir, { recursive: true, force: true });
  }
});

test('TLS verified against SSL_CERT_FILE: JSON chat and a stream over https://localhost work end to end', T, async () => {
  clearAll();
  const key = gwCa.keys.main.key;
  const rec = await assertChatWorks(gwCa, key, 'tls-name', mocks.tls);
  assert.equal(rec.tls_servername, 'localhost', 'the request must have come over TLS with SNI localhost');
  await assertStreamWorks(gwCa, key, 'tls-name', mocks.tls);
  assert.deepEqual(mocks.tls.tlsErrors, [], 'no failed handshake expected');
});

test('SNI: a host-name base_url sends servername localhost; an IP literal sends none and is verified against the IP SAN', T, async () => {
  clearAll();
  const key = gwCa.keys.main.key;
  const byName = await assertChatWorks(gwCa, key, 'tls-name', mocks.tls);
  assert.equal(byName.tls_servername, 'localhost', 'SNI for https://localhost');
  const byIp = await assertChatWorks(gwCa, key, 'tls-ip', mocks.tls);
  assert.equal(byIp.tls_servername, false, `no SNI for an IP literal (RFC 6066), got ${JSON.stringify(byIp.tls_servername)}`);
  await assertStreamWorks(gwCa, key, 'tls-ip', mocks.tls);
  // Every handshake of this test: one with SNI localhost (unless the connection of the
  // previous test was reused from the pool) and one without.
  assert.ok(mocks.tls.tlsServernames.includes(false), JSON.stringify(mocks.tls.tlsServernames));
  assert.ok(mocks.tls.tlsServernames.every((n) => n === 'localhost' || n === false),
    `unexpected SNI names: ${JSON.stringify(mocks.tls.tlsServernames)}`);
});

test('a certificate from a CA outside the system store (gateway without SSL_CERT_FILE): 502 upstream_error, gateway stays up', T, async () => {
  clearAll();
  await withGateway([['tls-name', httpsUrl('localhost', mocks.tls)]], {}, async (gw, key) => {
    await assert502(gw, key, 'tls-name', 'untrusted CA');
    await assertHandshakeRejected(gw, mocks.tls, 'untrusted CA', /UNKNOWN_CA/);
    await assertAlive(gw, key);
  });
});

test('a certificate whose names do not match the base_url host: 502 upstream_error, gateway stays up', T, async () => {
  clearAll();
  const key = gwCa.keys.main.key;
  // https://127.0.0.1:PORT, certificate with DNS:localhost only (no IP SAN).
  await assert502(gwCa, key, 'tls-ip-dns-only-cert', 'IP base_url, DNS-only certificate');
  await assertHandshakeRejected(gwCa, mocks.dnsOnly, 'IP base_url, DNS-only certificate');
  // https://localhost:PORT, certificate for otherhost (same trusted CA).
  await assert502(gwCa, key, 'tls-otherhost-cert', 'localhost base_url, otherhost certificate');
  await assertHandshakeRejected(gwCa, mocks.other, 'localhost base_url, otherhost certificate');
  await assertAlive(gwCa, key);
  await assertChatWorks(gwCa, key, 'tls-name', mocks.tls, 'tls-name after the failures');
});

test('HTTPS_PROXY: an https upstream is reached through CONNECT with Proxy-Authorization, and TLS is still verified', T, async () => {
  clearAll();
  const httpsProxy = await newProxy();
  const httpProxy = await newProxy();
  await withGateway([
    ['tls-name', httpsUrl('localhost', mocks.tls)],
    ['tls-otherhost-cert', httpsUrl('localhost', mocks.other)],
  ], { SSL_CERT_FILE: pki.ca, HTTPS_PROXY: httpsProxy.url('user:pass'), HTTP_PROXY: httpProxy.url('huser:hp%40ss') },
  async (gw, key) => {
    const rec = await assertChatWorks(gw, key, 'tls-name', mocks.tls, 'through HTTPS_PROXY');
    assert.equal(rec.tls_servername, 'localhost', 'SNI through the tunnel');
    await assertStreamWorks(gw, key, 'tls-name', mocks.tls, 'stream through HTTPS_PROXY');
    assert.ok(httpsProxy.seen.length >= 1, 'the proxy saw no CONNECT');
    for (const c of httpsProxy.seen) {
      assert.equal(c.line, `CONNECT localhost:${mocks.tls.port} HTTP/1.1`);
      assert.equal(c.headers['proxy-authorization'], HTTPS_PROXY_AUTH, JSON.stringify(c.rawHeaders));
      assert.equal(c.headers.host, `localhost:${mocks.tls.port}`, 'Host of a CONNECT is the authority');
    }
    assert.deepEqual(httpProxy.seen, [], 'HTTP_PROXY must not be used for an https upstream');
    assert.deepEqual(httpsProxy.plainRequests, [], 'only CONNECT may reach the proxy');

    // Through the tunnel the certificate is still checked: otherhost's certificate → 502.
    httpsProxy.clear();
    await assert502(gw, key, 'tls-otherhost-cert', 'otherhost certificate through HTTPS_PROXY');
    await assertHandshakeRejected(gw, mocks.other, 'otherhost certificate through HTTPS_PROXY');
    assert.ok(httpsProxy.seen.length >= 1, 'the failing request must have gone through the proxy too');
    assert.equal(httpsProxy.seen[0].line, `CONNECT localhost:${mocks.other.port} HTTP/1.1`);
    await assertAlive(gw, key);
  });
});

test('HTTP_PROXY: an http:// upstream is tunnelled with CONNECT too', T, async () => {
  clearAll();
  const httpsProxy = await newProxy();
  const httpProxy = await newProxy();
  await withGateway([['plain', mocks.plain.baseUrl]],
    { SSL_CERT_FILE: pki.ca, HTTPS_PROXY: httpsProxy.url('user:pass'), HTTP_PROXY: httpProxy.url('huser:hp%40ss') },
    async (gw, key) => {
      await assertChatWorks(gw, key, 'plain', mocks.plain, 'through HTTP_PROXY');
      await assertStreamWorks(gw, key, 'plain', mocks.plain, 'stream through HTTP_PROXY');
      assert.ok(httpProxy.seen.length >= 1, 'the proxy saw no CONNECT');
      for (const c of httpProxy.seen) {
        assert.equal(c.line, `CONNECT 127.0.0.1:${mocks.plain.port} HTTP/1.1`);
        assert.equal(c.headers['proxy-authorization'], HTTP_PROXY_AUTH,
          `percent-decoded userinfo huser:hp@ss as Basic: ${JSON.stringify(c.rawHeaders)}`);
        assert.equal(c.headers.host, `127.0.0.1:${mocks.plain.port}`, 'Host of a CONNECT is the authority');
      }
      assert.deepEqual(httpProxy.plainRequests, [], 'an absolute-form request instead of a CONNECT tunnel');
      assert.deepEqual(httpsProxy.seen, [], 'HTTPS_PROXY must not be used for an http upstream');
    });
});

test('NO_PROXY=localhost: https://localhost bypasses the proxy, https://127.0.0.1 still uses it', T, async () => {
  clearAll();
  const proxy = await newProxy();
  await withGateway([
    ['tls-name', httpsUrl('localhost', mocks.tls)],
    ['tls-ip', httpsUrl('127.0.0.1', mocks.tls)],
  ], { SSL_CERT_FILE: pki.ca, HTTPS_PROXY: proxy.url('user:pass'), HTTP_PROXY: proxy.url('user:pass'),
    NO_PROXY: 'localhost' }, async (gw, key) => {
    await assertChatWorks(gw, key, 'tls-name', mocks.tls, 'localhost with NO_PROXY=localhost');
    await assertStreamWorks(gw, key, 'tls-name', mocks.tls, 'stream to localhost with NO_PROXY=localhost');
    assert.deepEqual(proxy.seen, [], 'NO_PROXY=localhost: the proxy must see nothing for https://localhost');
    // Matching uses the host of base_url, not its resolved address.
    await assertChatWorks(gw, key, 'tls-ip', mocks.tls, '127.0.0.1 with NO_PROXY=localhost');
    assert.deepEqual(proxy.seen.map((c) => c.line), [`CONNECT 127.0.0.1:${mocks.tls.port} HTTP/1.1`]);
  });
});

test('NO_PROXY=127.0.0.1: https:// and http://127.0.0.1 bypass the proxy, https://localhost still uses it', T, async () => {
  clearAll();
  const proxy = await newProxy();
  await withGateway([
    ['tls-name', httpsUrl('localhost', mocks.tls)],
    ['tls-ip', httpsUrl('127.0.0.1', mocks.tls)],
    ['plain', mocks.plain.baseUrl],
  ], { SSL_CERT_FILE: pki.ca, HTTPS_PROXY: proxy.url('user:pass'), HTTP_PROXY: proxy.url('user:pass'),
    NO_PROXY: '127.0.0.1' }, async (gw, key) => {
    await assertChatWorks(gw, key, 'tls-ip', mocks.tls, 'https://127.0.0.1 with NO_PROXY=127.0.0.1');
    await assertStreamWorks(gw, key, 'tls-ip', mocks.tls, 'stream to https://127.0.0.1 with NO_PROXY=127.0.0.1');
    await assertChatWorks(gw, key, 'plain', mocks.plain, 'http://127.0.0.1 with NO_PROXY=127.0.0.1');
    assert.deepEqual(proxy.seen, [], 'NO_PROXY=127.0.0.1: the proxy must see nothing for 127.0.0.1 upstreams');
    await assertChatWorks(gw, key, 'tls-name', mocks.tls, 'localhost with NO_PROXY=127.0.0.1');
    assert.deepEqual(proxy.seen.map((c) => c.line), [`CONNECT localhost:${mocks.tls.port} HTTP/1.1`]);
  });
});

test('a proxy answering 407 to CONNECT: 502 upstream_error for https and http upstreams, logged, gateway stays up', T, async () => {
  clearAll();
  const proxy = await newProxy({ deny: true });
  await withGateway([
    ['tls-name', httpsUrl('localhost', mocks.tls)],
    ['plain', mocks.plain.baseUrl],
  ], { SSL_CERT_FILE: pki.ca, HTTPS_PROXY: proxy.url(), HTTP_PROXY: proxy.url() }, async (gw, key) => {
    await assert502(gw, key, 'tls-name', '407 for an https upstream');
    await assert502(gw, key, 'plain', '407 for an http upstream');
    assert.deepEqual([...new Set(proxy.seen.map((c) => c.line))].sort(), [
      `CONNECT 127.0.0.1:${mocks.plain.port} HTTP/1.1`,
      `CONNECT localhost:${mocks.tls.port} HTTP/1.1`,
    ].sort());
    assert.ok(proxy.seen.every((c) => c.headers['proxy-authorization'] === undefined),
      'a proxy URL without userinfo sends no Proxy-Authorization');
    assert.deepEqual(mocks.tls.recorded(), [], 'nothing may reach the upstream past a refused CONNECT');
    assert.deepEqual(mocks.tls.tlsServernames, [], 'no TLS handshake past a refused CONNECT');
    assert.deepEqual(mocks.plain.recorded(), [], 'nothing may reach the upstream past a refused CONNECT');
    await waitUntil(() => logged(gw, 'proxy refused CONNECT').length >= 1, 2_000,
      `a "proxy refused CONNECT" log line; stderr:\n${gw.stderr.slice(-2000)}`);
    await assertAlive(gw, key);
  });
});

test('bytes a proxy sends after its 200 and before the tunnelled exchange are refused: 502', T, async () => {
  clearAll();
  const proxy = await newProxy({ junk: true });
  await withGateway([
    ['tls-name', httpsUrl('localhost', mocks.tls)],
    ['plain', mocks.plain.baseUrl],
  ], { SSL_CERT_FILE: pki.ca, HTTPS_PROXY: proxy.url(), HTTP_PROXY: proxy.url() }, async (gw, key) => {
    for (const model of ['plain', 'tls-name']) {
      const res = await chat(gw.port, key, chatBody(model, 'injected?'), { timeoutMs: 8_000 });
      assertOpenAIError(assert, res, 502, 'upstream_error');
      assert.ok(!res.text.includes('injected'), `${model}: the proxy's extra bytes were taken as the answer: ${res.text}`);
    }
    assert.ok(proxy.seen.length >= 2, `the proxy saw ${proxy.seen.length} CONNECT(s)`);
    await assertAlive(gw, key);
  });
});

test('an https:// proxy URL: the gateway refuses to start ("only http:// proxies")', T, async () => {
  const port = await freePort(); // nothing listens: the gateway must not even try
  for (const variable of ['HTTPS_PROXY', 'HTTP_PROXY']) {
    const gw = await startGateway({ config: configFor([['tls-name', httpsUrl('localhost', mocks.tls)]]),
      env: { ...CLEAN_ENV, SSL_CERT_FILE: pki.ca, [variable]: `https://127.0.0.1:${port}` }, keys: {}, serve: false,
      mockKey: mocks.tls.apiKey });
    try {
      const r = await gw.serveExpectExit({ timeoutMs: 8_000 });
      assert.ok(r.exited, `${variable}=https://…: the gateway kept running; stderr:\n${r.stderr}`);
      assert.ok(r.code !== 0 || r.signal !== null, `${variable}=https://…: exit code 0; stderr:\n${r.stderr}`);
      assert.equal(r.signal, null, `${variable}=https://…: killed by ${r.signal}; stderr:\n${r.stderr}`);
      assert.match(r.stderr, /only http:\/\/ proxies/, `${variable}=https://…: stderr must say why`);
    } finally {
      await gw.cleanup();
    }
  }
});
