// A strict RFC 8259 JSON parser written for the parser-differential tests: independent of
// Boost.JSON (the gateway's) and of V8's JSON.parse (the mock's), it reads the bytes a provider
// would receive and reports what a careful provider would see.
//
// - Input is a Buffer; UTF-8 is validated by hand (no overlong forms, no encoded surrogates,
//   nothing above U+10FFFF). A byte-order mark is an error (RFC 8259 §8.1: MUST NOT be sent).
// - Grammar exactly as RFC 8259: no trailing commas, no comments, no leading zeros, no bytes
//   after the value but whitespace.
// - Objects are plain null-prototype objects; a repeated key (compared after unescaping) keeps
//   the last value, as Python's and Go's parsers do, and is listed in `duplicates` by path.
// - Strings: escapes decoded; a lone surrogate escape is kept as is and listed in
//   `loneSurrogates` (the grammar allows it, RFC 8259 §8.2 calls the result unpredictable).
// - Numbers: integers beyond 2^53 become BigInt, so token limits compare exactly.
//
// parseStrict(buf) → { value, duplicates: [path], loneSurrogates: [path], maxDepth }
// and throws a StrictJsonError (with .offset) on anything else.

export class StrictJsonError extends Error {
  constructor(message, offset) {
    super(`${message} at byte ${offset}`);
    this.offset = offset;
  }
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** Decodes strict UTF-8 or throws. Returns the string. */
function decodeUtf8Strict(buf) {
  let i = 0;
  let out = '';
  const n = buf.length;
  while (i < n) {
    const b = buf[i];
    if (b < 0x80) {
      out += String.fromCharCode(b);
      i += 1;
      continue;
    }
    let need;
    let cp;
    let min;
    if (b >= 0xc2 && b <= 0xdf) { need = 1; cp = b & 0x1f; min = 0x80; }
    else if (b >= 0xe0 && b <= 0xef) { need = 2; cp = b & 0x0f; min = 0x800; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 3; cp = b & 0x07; min = 0x10000; }
    else throw new StrictJsonError(`invalid UTF-8 lead byte 0x${b.toString(16)}`, i);
    if (i + need >= n) throw new StrictJsonError('truncated UTF-8 sequence', i);
    for (let k = 1; k <= need; k++) {
      const c = buf[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) throw new StrictJsonError('invalid UTF-8 continuation byte', i + k);
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min) throw new StrictJsonError('overlong UTF-8 encoding', i);
    if (cp >= 0xd800 && cp <= 0xdfff) throw new StrictJsonError('UTF-8 encoded surrogate', i);
    if (cp > 0x10ffff) throw new StrictJsonError('code point above U+10FFFF', i);
    out += String.fromCodePoint(cp);
    i += need + 1;
  }
  return out;
}

export function parseStrict(buf) {
  if (!Buffer.isBuffer(buf)) buf = Buffer.from(buf, 'utf8');
  if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) {
    throw new StrictJsonError('byte-order mark', 0);
  }
  const text = decodeUtf8Strict(buf);
  const duplicates = [];
  const loneSurrogates = [];
  let maxDepth = 0;
  let i = 0;

  const fail = (msg) => {
    throw new StrictJsonError(msg, i);
  };
  const ws = () => {
    while (i < text.length && WS.has(text.charCodeAt(i))) i++;
  };
  const expect = (ch) => {
    if (text[i] !== ch) fail(`expected '${ch}'`);
    i++;
  };

  function string(path) {
    expect('"');
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        out += text[i++];
        continue;
      }
      i++;
      const e = text[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hex4 = () => {
            const h = text.slice(i, i + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('bad \\u escape');
            i += 4;
            return parseInt(h, 16);
          };
          const u = hex4();
          if (u >= 0xd800 && u <= 0xdbff && text[i] === '\\' && text[i + 1] === 'u') {
            const save = i;
            i += 2;
            const v = hex4();
            if (v >= 0xdc00 && v <= 0xdfff) {
              out += String.fromCharCode(u, v);
              break;
            }
            i = save;
          }
          if (u >= 0xd800 && u <= 0xdfff) loneSurrogates.push(path);
          out += String.fromCharCode(u);
          break;
        }
        default:
          fail(`bad escape \\${e}`);
      }
    }
  }

  function number() {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 4096));
    if (!m || m[0].length === 0 || m[0] === '-') fail('bad number');
    i += m[0].length;
    const raw = m[0];
    if (!m[2] && !m[3]) {
      const big = BigInt(raw);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    return Number(raw);
  }

  function value(path, depth) {
    maxDepth = Math.max(maxDepth, depth);
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj = Object.create(null);
      const seen = new Set();
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        const k = string(path);
        if (seen.has(k)) duplicates.push(path === '' ? k : `${path}.${k}`);
        seen.add(k);
        ws();
        expect(':');
        obj[k] = value(path === '' ? k : `${path}.${k}`, depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        expect('}');
        return obj;
      }
    }
    if (c === '[') {
      i++;
      const arr = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(`${path}[${arr.length}]`, depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        expect(']');
        return arr;
      }
    }
    if (c === '"') return string(path);
    if (text.startsWith('true', i)) { i += 4; return true; }
    if (text.startsWith('false', i)) { i += 5; return false; }
    if (text.startsWith('null', i)) { i += 4; return null; }
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    return fail('unexpected character');
  }

  const v = value('', 1);
  ws();
  if (i !== text.length) fail('bytes after the JSON value');
  return { value: v, duplicates, loneSurrogates, maxDepth };
}
