// An S3-compatible server for the archive tests: npm `s3rver` on 127.0.0.1 (a free port, a
// temporary directory), behind a small front that does what s3rver 3.7.1 leaves out and AWS S3
// does: it verifies each request's SigV4 signature (an implementation apart from the
// gateway's, on node:crypto), refuses a body whose Content-MD5 (BadDigest) or
// x-amz-content-sha256 (XAmzContentSHA256Mismatch) does not match, and honours
// `If-None-Match: *` on PUT (412 when the key exists). s3rver itself only checks that the
// access key exists and ignores both checksums. A server that cannot start throws: a test
// using it fails, never skips.

import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import S3rver from 's3rver';

export const S3_ACCESS_KEY_ID = 'S3RVER'; // s3rver's built-in account
export const S3_SECRET_ACCESS_KEY = 'S3RVER';
const MAX_SKEW_MS = 15 * 60 * 1000;

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const hmac = (key, s) => crypto.createHmac('sha256', key).update(s).digest();
const rfc3986 = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function s3Error(res, status, code, message) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${message}</Message></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The SigV4 signature (hex) of a request as S3 computes it: the path signed as sent. */
export function sigV4Signature({ method, url, headers, signedHeaders, payloadHash, amzDate, region, service, secret }) {
  const [rawPath, rawQuery = ''] = url.split(/\?(.*)/s);
  const query = rawQuery.split('&').filter(Boolean).map((p) => {
    const [k, v = ''] = p.split(/=(.*)/s);
    return [rfc3986(decodeURIComponent(k)), rfc3986(decodeURIComponent(v))];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`).join('&');
  const canonHeaders = signedHeaders.split(';')
    .map((n) => `${n}:${String(headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonical = [method, rawPath, query, canonHeaders, signedHeaders, payloadHash].join('\n');
  const date = amzDate.slice(0, 8);
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let key = hmac(`AWS4${secret}`, date);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  return hmac(key, toSign).toString('hex');
}

/** Headers (lower-case names) of a request signed for s3rver's account, for raw requests. */
export function signedHeaders(method, url, host, body, extra = {}) {
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const headers = { host, 'x-amz-date': amzDate, 'x-amz-content-sha256': sha256(body), ...extra };
  const names = Object.keys(headers).sort().join(';');
  const signature = sigV4Signature({ method, url, headers, signedHeaders: names, payloadHash: headers['x-amz-content-sha256'],
    amzDate, region: 'us-east-1', service: 's3', secret: S3_SECRET_ACCESS_KEY });
  return { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${S3_ACCESS_KEY_ID}/${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request, SignedHeaders=${names}, Signature=${signature}` };
}

/** Null when `req` (with `body`) carries a valid SigV4 signature by `secret`; else [code, message]. */
export function checkSigV4(req, body, secret) {
  const auth = req.headers.authorization ?? '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return ['AccessDenied', 'missing or malformed SigV4 Authorization'];
  const [, , date, region, service, signed, signature] = m;
  const amzDate = req.headers['x-amz-date'] ?? '';
  if (!amzDate.startsWith(date)) return ['AccessDenied', 'X-Amz-Date does not match the credential scope'];
  const t = Date.parse(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
  if (!Number.isFinite(t) || Math.abs(Date.now() - t) > MAX_SKEW_MS) return ['RequestTimeTooSkewed', 'bad X-Amz-Date'];
  const payloadHash = req.headers['x-amz-content-sha256'];
  if (!payloadHash) return ['InvalidRequest', 'x-amz-content-sha256 is missing'];
  if (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== sha256(body)) {
    return ['XAmzContentSHA256Mismatch', 'x-amz-content-sha256 does not match the body'];
  }
  if (!signed.split(';').includes('host')) return ['AccessDenied', 'host is not signed'];
  const expected = sigV4Signature({ method: req.method, url: req.url, headers: req.headers, signedHeaders: signed,
    payloadHash, amzDate, region, service, secret });
  if (expected !== signature) return ['SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.'];
  return null;
}

/**
 * Null when a request signed by `cred` carries its session token as S3 wants it (present,
 * equal, signed); else [code, message]. Without a session token: whether the key id is its.
 */
function checkCredential(req, cred) {
  const m = /Credential=([^/]+)\/.*SignedHeaders=([^,]+)/.exec(req.headers.authorization ?? '');
  if (!m || m[1] !== cred.accessKeyId) return ['InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.'];
  if (!cred.sessionToken) return null;
  const token = req.headers['x-amz-security-token'];
  if (token !== cred.sessionToken) return ['InvalidToken', 'The provided token is malformed or otherwise invalid.'];
  if (!m[2].split(';').includes('x-amz-security-token')) return ['AccessDenied', 'x-amz-security-token is not signed'];
  return null;
}

function collect(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function forward(port, method, url, headers, body) {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method, path: url, headers }, (res) => {
      collect(res).then((b) => resolve({ status: res.statusCode, headers: res.headers, body: b }), reject);
    });
    r.on('error', reject);
    r.end(body);
  });
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

/**
 * Starts s3rver and its checking front. Returns {endpoint, bucket, env (the gateway's
 * LOGGING_SINK_* and AWS_* variables), stats, get(key), put(key, body), stop(), restart(),
 * close()}.
 *
 * `credentials` ({accessKeyId, secretAccessKey, sessionToken?}) replaces s3rver's built-in
 * account: the front checks signatures with that secret and, with a session token, that
 * x-amz-security-token carries it and is signed (s3rver itself does not check SigV4, only that
 * the access key exists: the front hands it s3rver's own key id). stop() takes both servers
 * down, dropping the clients' connections (a request the store had whole completes unheard,
 * as S3 stores a PUT whole or not at all), and restart() brings them back on the same ports
 * over the same data directory: an outage of the store, nothing stored lost.
 */
export async function startS3({ bucket = 'audit', prefix = 'logs/', credentials } = {}) {
  const cred = credentials ?? { accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: S3_SECRET_ACCESS_KEY };
  const directory = await fsp.mkdtemp(path.join(os.tmpdir(), 'llmgw-s3rver-'));
  let s3rver = null;
  let backPort = 0;
  const startBack = async () => {
    s3rver = new S3rver({ address: '127.0.0.1', port: backPort, silent: true, directory,
      resetOnClose: false, configureBuckets: [{ name: bucket }] });
    backPort = (await s3rver.run()).port;
  };
  await startBack();
  // existing: PUTs refused with 412 (the name was taken); unanswered: PUTs stored, never answered.
  const stats = { requests: 0, puts: 0, refused: [], existing: 0, unanswered: 0 };
  let stopAfterPut = null; // armed by stop({afterNextPut: true}): its resolve
  const inflight = new Set();
  const front = http.createServer(async (req, res) => {
    try {
      stats.requests += 1;
      const body = await collect(req);
      const bad = checkSigV4(req, body, cred.secretAccessKey) ?? checkCredential(req, cred);
      if (bad) {
        stats.refused.push(bad[0]);
        return s3Error(res, 403, ...bad);
      }
      if (req.method === 'PUT') {
        const md5 = req.headers['content-md5'];
        if (md5 === undefined) {
          stats.refused.push('MissingContentMD5');
          return s3Error(res, 400, 'InvalidRequest', 'Content-MD5 is required by this test store');
        }
        if (md5 !== crypto.createHash('md5').update(body).digest('base64')) {
          stats.refused.push('BadDigest');
          return s3Error(res, 400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
        }
        if (req.headers['if-none-match'] === '*') {
          const head = await forward(backPort, 'HEAD', req.url.split('?')[0], {}, undefined);
          if (head.status === 200) {
            stats.existing += 1;
            return s3Error(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
          }
        }
        stats.puts += 1;
      }
      const headers = { ...req.headers, host: `127.0.0.1:${backPort}` };
      delete headers['if-none-match'];
      delete headers['x-amz-security-token'];
      headers.authorization = headers.authorization.replace(/Credential=[^/]+\//, `Credential=${S3_ACCESS_KEY_ID}/`);
      // Tracked, so that stop() lets it finish: S3 stores a PUT whole or not at all, where
      // s3rver cut off mid-body keeps the part it had.
      const pending = forward(backPort, req.method, req.url, headers, body);
      inflight.add(pending);
      const out = await pending.finally(() => inflight.delete(pending));
      if (req.method === 'PUT' && out.status === 200 && stopAfterPut) {
        // Stored, and the store goes down before it says so.
        const resolve = stopAfterPut;
        stopAfterPut = null;
        stats.unanswered += 1;
        await stop();
        return resolve();
      }
      res.writeHead(out.status, out.headers);
      res.end(out.body);
    } catch (e) {
      s3Error(res, 500, 'InternalError', String(e.message));
    }
  });
  const frontPort = await listen(front);
  const endpoint = `http://127.0.0.1:${frontPort}`;
  let running = true;
  const stop = async () => {
    if (!running) return;
    running = false;
    const closed = new Promise((resolve) => front.close(resolve));
    front.closeAllConnections();
    await closed;
    // What the store had received is stored (the client, gone, never hears so).
    await Promise.allSettled([...inflight]);
    const backClosed = s3rver.close();
    s3rver.httpServer.closeAllConnections();
    await backClosed;
  };
  return {
    endpoint,
    bucket,
    stats,
    env: {
      LOGGING_SINK_ENABLED: 'true',
      LOGGING_SINK_S3_BUCKET: bucket,
      LOGGING_SINK_S3_REGION: 'us-east-1',
      LOGGING_SINK_S3_PREFIX: prefix,
      LOGGING_SINK_S3_ENDPOINT: endpoint,
      AWS_ACCESS_KEY_ID: cred.accessKeyId,
      AWS_SECRET_ACCESS_KEY: cred.secretAccessKey,
      ...(cred.sessionToken ? { AWS_SESSION_TOKEN: cred.sessionToken } : {}),
    },
    /** An object's bytes straight from s3rver (null when missing). */
    async get(key) {
      const r = await forward(backPort, 'GET', `/${bucket}/${key.split('/').map(rfc3986).join('/')}`, {}, undefined);
      return r.status === 200 ? r.body : null;
    },
    /** Every object's name under `prefix`, straight from s3rver (ListObjectsV2, all pages). */
    async list(under = '') {
      const names = [];
      let token = '';
      for (;;) {
        const q = `list-type=2&prefix=${rfc3986(under)}${token ? `&continuation-token=${rfc3986(token)}` : ''}`;
        const r = await forward(backPort, 'GET', `/${bucket}?${q}`, {}, undefined);
        if (r.status !== 200) throw new Error(`s3rver list: ${r.status} ${r.body}`);
        const xml = r.body.toString('utf8');
        for (const m of xml.matchAll(/<Key>([^<]*)<\/Key>/g)) names.push(m[1].replace(/&amp;/g, '&'));
        const next = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml);
        if (!/<IsTruncated>true<\/IsTruncated>/.test(xml) || !next) return names;
        token = next[1];
      }
    },
    /** Stores an object straight into s3rver (no checks). */
    async put(key, body) {
      const r = await forward(backPort, 'PUT', `/${bucket}/${key.split('/').map(rfc3986).join('/')}`,
        { 'content-length': body.length }, body);
      if (r.status !== 200) throw new Error(`s3rver PUT ${key}: ${r.status} ${r.body}`);
    },
    /** A raw request to the front (for its own checks); `sign` signs it for s3rver's account. */
    raw(method, url, headers, body, { sign = false } = {}) {
      const h = sign ? signedHeaders(method, url, `127.0.0.1:${frontPort}`, body ?? Buffer.alloc(0), headers) : headers;
      return forward(frontPort, method, url, h, body);
    },
    /**
     * Both servers down, their clients' connections dropped; the data directory stays. With
     * `afterNextPut`: once the next PUT is stored, before it is answered.
     */
    async stop({ afterNextPut = false } = {}) {
      if (!afterNextPut) return stop();
      return new Promise((resolve) => { stopAfterPut = resolve; });
    },
    /** Both servers back on their ports, over the same data directory. */
    async restart() {
      if (running) return;
      await startBack();
      await new Promise((resolve, reject) => {
        front.once('error', reject);
        front.listen(frontPort, '127.0.0.1', () => resolve());
      });
      running = true;
    },
    async close() {
      await this.stop();
      await fsp.rm(directory, { recursive: true, force: true });
    },
  };
}
