// Pieces every mock upstream in this folder shares: the request body reader, the directive
// parser, an unref'd sleep and the command-line runner. Node.js 20 only.

import { pathToFileURL } from 'node:url';

const MAX_BODY_BYTES = 64 << 20;

/** Unref'd: a pending delay must not keep a test process alive after stop(). */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** The whole request body (rejects past 64 MiB, or when the client goes away). */
export function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.destroy();
        reject(new Error('body too large'));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('aborted')));
  });
}

const DIRECTIVE_RE = /\[mock:([a-z_]+)(?:=([^\]]*))?\]/g;

/**
 * A parser of `[mock:name=value]` / `[mock:flag]` tokens for the given directive names
 * (Sets of integer, flag and string directives). Unknown names and bad integers throw.
 */
export function directiveParser(ints, flags, strings) {
  return (text) => {
    const out = {};
    if (typeof text !== 'string') return out;
    for (const [, name, value] of text.matchAll(DIRECTIVE_RE)) {
      if (ints.has(name)) {
        const n = Number(value);
        if (value === undefined || !Number.isInteger(n) || n < 0) {
          throw new Error(`mock directive ${name} needs a non-negative integer, got ${value}`);
        }
        out[name] = n;
      } else if (flags.has(name)) {
        out[name] = true;
      } else if (strings.has(name)) {
        out[name] = value ?? '';
      } else {
        throw new Error(`unknown mock directive ${name}`);
      }
    }
    return out;
  };
}

/**
 * Runs a mock as a program when `moduleUrl` is the script node was started with: parses
 * `--port N --host H` and the mock's own `options` ({'--flag': [key, parse or true]}), starts
 * `create(opts)`, prints one JSON line `{"event":"listening", ...describe(mock)}` and stops on
 * SIGTERM/SIGINT.
 */
export function runMockCli(moduleUrl, { name, usage, options, create, describe }) {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  const main = async () => {
    const opts = { port: 0, host: '127.0.0.1' };
    try {
      const argv = process.argv.slice(2);
      for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--help' || a === '-h') {
          process.stdout.write(`usage: node ${name}.mjs ${usage}\n`);
          process.exit(0);
        }
        const spec = { '--port': ['port', Number], '--host': ['host', String], ...options }[a];
        if (!spec) throw new Error(`unknown argument ${a}`);
        if (spec[1] === true) {
          opts[spec[0]] = true;
        } else {
          if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
          opts[spec[0]] = spec[1](argv[++i]);
        }
      }
      if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('bad --port');
    } catch (e) {
      process.stderr.write(`${name}: ${e.message}\n`);
      process.exit(2);
    }
    const mock = create(opts);
    await mock.start(opts.port);
    process.stdout.write(JSON.stringify({ event: 'listening', host: mock.host, port: mock.port, ...describe(mock) }) + '\n');
    const shutdown = () => mock.stop().then(() => process.exit(0));
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
  };
  main().catch((e) => {
    process.stderr.write(`${name}: ${e.stack ?? e}\n`);
    process.exit(1);
  });
}

/**
 * A value matching a JSON schema, for the tool input / function arguments a mock "decides" on:
 * the required properties (all when none are listed), strings "mock", numbers 1, booleans true,
 * an enum's first value, one-item arrays.
 */
export function sampleFromSchema(s) {
  if (!s || typeof s !== 'object') return null;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  switch (s.type) {
    case 'string': return 'mock';
    case 'number': case 'integer': return 1;
    case 'boolean': return true;
    case 'array': return [sampleFromSchema(s.items ?? { type: 'string' })];
    case 'object': {
      const props = s.properties ?? {};
      const keys = Array.isArray(s.required) ? s.required : Object.keys(props);
      return Object.fromEntries(keys.map((k) => [k, sampleFromSchema(props[k] ?? { type: 'string' })]));
    }
    default: return null;
  }
}

/** `a,b,,c` → ['a', 'b', 'c'] (for --models). */
export const commaList = (s) => s.split(',').filter(Boolean);

/**
 * A set of pending waits on a mock's record: `wait(predicate, timeoutMs, what)` resolves with
 * `recorded()` once `predicate(recorded())` holds (checked at each `notify()`), rejects after
 * `timeoutMs` with `what` and `summary()` in the message, or at `rejectAll()` (stop()).
 */
export class RecordWaiters {
  constructor(recorded, summary = () => '') {
    this.recorded = recorded;
    this.summary = summary;
    this.set = new Set();
  }

  wait(predicate, timeoutMs, what) {
    if (predicate(this.recorded())) return Promise.resolve(this.recorded());
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          if (predicate(this.recorded())) {
            clearTimeout(w.timer);
            this.set.delete(w);
            resolve(this.recorded());
          }
        },
        reject,
        timer: setTimeout(() => {
          this.set.delete(w);
          reject(new Error(`mock: timed out after ${timeoutMs} ms waiting for ${what}${this.summary()}`));
        }, timeoutMs),
      };
      this.set.add(w);
    });
  }

  notify() {
    for (const w of [...this.set]) w.check();
  }

  rejectAll() {
    for (const w of this.set) {
      clearTimeout(w.timer);
      w.reject(new Error('mock stopped'));
    }
    this.set.clear();
  }
}

/**
 * Starts `node FILE ARGS…` (a mock's command line) and resolves with `{child, line}`, `line`
 * being its parsed first stdout line, or rejects after 5 s.
 */
export async function spawnMock(spawn, file, args = []) {
  const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const line = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 5_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(JSON.parse(out.split('\n')[0]));
      }
    });
  });
  return { child, line };
}

/**
 * An HTTP/1.1 server for a mock: `handler(req, res)` per request, each socket numbered in
 * `socket.mockConnectionId` and tracked in the returned `sockets` so that `closeServer` can
 * end keep-alive connections.
 */
export function createMockServer(http, handler) {
  const server = http.createServer({ keepAliveTimeout: 5_000, requestTimeout: 0 }, handler);
  const sockets = new Set();
  let connections = 0;
  server.on('connection', (s) => {
    s.mockConnectionId = ++connections;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return { server, sockets };
}

/** Listens on host:port (0: a free port); resolves once listening. */
export function listenServer(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Closes the server and destroys its open connections. */
export function closeServer(server, sockets) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  });
}

/**
 * The record's admin routes: `GET /__mock/requests[?min=N&timeout_ms=T]` (waiting at most
 * 10 s) and `DELETE /__mock/requests`; anything else 404 with `notFoundBody`.
 */
export function serveRecordAdmin(req, res, url, mock, notFoundBody) {
  const send = (status, obj) => {
    const text = obj === undefined ? '' : JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  if (url.pathname === '/__mock/requests' && req.method === 'GET') {
    const min = Number(url.searchParams.get('min') ?? 0);
    const timeout = Math.min(Number(url.searchParams.get('timeout_ms') ?? 0), 10_000);
    const answer = () => send(200, mock.recorded());
    if (min > 0) mock.waitFor((rs) => rs.length >= min, timeout, 'requests').then(answer, answer);
    else answer();
  } else if (url.pathname === '/__mock/requests' && req.method === 'DELETE') {
    mock.clearRequests();
    send(204);
  } else {
    send(404, notFoundBody);
  }
}
