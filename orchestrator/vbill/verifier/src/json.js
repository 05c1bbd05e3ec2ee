// A JSON reader that keeps every number exact, as Python's json module does.
//
// Integers become BigInt (amounts and sizes may exceed 2^53); numbers with a fraction or an
// exponent become JsonFloat (Python reads them as float, and the fingerprint writes them from
// their shortest repr). Objects have no prototype, so a "__proto__" key is just a key, and a
// repeated key keeps the last value, like Python. Lone surrogates in strings are kept: the
// encoding rejects them later, naming the field. The bounds are vbill.jsonio's: at most 32
// levels of nesting and 80-digit integers (every integer vbill reads is below 2^256).

export class JsonFloat {
  constructor(value) {
    this.value = value; // a JS number (IEEE double, as Python's float)
  }
}

export class JsonSyntaxError extends Error {}

const WS = new Set([" ", "\t", "\n", "\r"]);
const ESCAPES = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
const MAX_DEPTH = 32;
const MAX_INT_DIGITS = 80;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

export function parseJson(text) {
  let i = 0;
  const fail = (what) => {
    throw new JsonSyntaxError(`${what} at character ${i}`);
  };
  const ws = () => {
    while (i < text.length && WS.has(text[i])) i++;
  };
  const value = (depth) => {
    ws();
    const c = text[i];
    if (c === "{") return object(depth);
    if (c === "[") return array(depth);
    if (c === '"') return string();
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return fail(c === undefined ? "unexpected end of the file" : `unexpected ${JSON.stringify(c)}`);
  };
  const deeper = (depth) => {
    if (depth + 1 > MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH} levels`);
  };
  const object = (depth) => {
    deeper(depth);
    const out = Object.create(null);
    i++;
    ws();
    if (text[i] === "}") {
      i++;
      return out;
    }
    for (;;) {
      ws();
      if (text[i] !== '"') fail("expected a key");
      const key = string();
      ws();
      if (text[i] !== ":") fail("expected ':'");
      i++;
      out[key] = value(depth + 1);
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "}") {
        i++;
        return out;
      }
      fail("expected ',' or '}'");
    }
  };
  const array = (depth) => {
    deeper(depth);
    const out = [];
    i++;
    ws();
    if (text[i] === "]") {
      i++;
      return out;
    }
    for (;;) {
      out.push(value(depth + 1));
      ws();
      if (text[i] === ",") {
        i++;
        continue;
      }
      if (text[i] === "]") {
        i++;
        return out;
      }
      fail("expected ',' or ']'");
    }
  };
  const string = () => {
    i++;
    let out = "";
    for (;;) {
      const c = text[i];
      if (c === undefined) fail("unterminated string");
      if (c === '"') {
        i++;
        return out;
      }
      if (c < " ") fail("control character in a string");
      if (c === "\\") {
        const e = text[i + 1];
        if (e === "u") {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
          out += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else if (e in ESCAPES) {
          out += ESCAPES[e];
          i += 2;
        } else {
          fail("bad escape");
        }
      } else {
        out += c;
        i++;
      }
    }
  };
  const number = () => {
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) fail("bad number");
    i += m[0].length;
    if (m[1] === undefined && m[2] === undefined) {
      if (m[0].replace("-", "").length > MAX_INT_DIGITS) fail(`integer longer than ${MAX_INT_DIGITS} digits`);
      return BigInt(m[0]);
    }
    return new JsonFloat(Number(m[0]));
  };
  const result = value(0);
  ws();
  if (i !== text.length) fail("extra data after the JSON value");
  return result;
}

export const isObject = (v) =>
  v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof JsonFloat);

/** Python's == on JSON values (an int equals the float of the same value, True equals 1). */
export function pyEq(a, b) {
  const num = (v) => (typeof v === "boolean" ? (v ? 1n : 0n) : v);
  a = num(a);
  b = num(b);
  if (typeof a === "bigint" || a instanceof JsonFloat) {
    if (typeof b === "bigint") return a instanceof JsonFloat ? Number.isInteger(a.value) && BigInt(a.value) === b : a === b;
    if (b instanceof JsonFloat) return a instanceof JsonFloat ? a.value === b.value : pyEq(b, a);
    return false;
  }
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => pyEq(x, b[i]));
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && pyEq(a[k], b[k]));
  }
  return a === b;
}

// --- Python's view of a JSON value, for reasons worded as the Python package words them ---

/** type(v).__name__ of the value Python's json module reads ("null" for None, as _kind). */
export const pyKind = (v) =>
  v === null
    ? "null"
    : typeof v === "boolean" ? "bool" : typeof v === "bigint" ? "int" : v instanceof JsonFloat ? "float"
      : typeof v === "string" ? "str" : Array.isArray(v) ? "list" : "dict";

/** Python's int(v) of a JSON value; throws where Python raises. */
export function pyInt(v) {
  if (typeof v === "bigint") return v;
  if (typeof v === "boolean") return v ? 1n : 0n;
  if (v instanceof JsonFloat && Number.isFinite(v.value)) return BigInt(Math.trunc(v.value));
  if (typeof v === "string" && /^\s*[+-]?[0-9]+(_[0-9]+)*\s*$/.test(v)) return BigInt(v.trim().replaceAll("_", ""));
  throw new TypeError("not an integer");
}

function strRepr(s) {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (ch === "\\" || ch === quote) out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    else if (c >= 0xd800 && c <= 0xdfff) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += ch;
  }
  return quote + out + quote;
}

function floatRepr(x) {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  const abs = Math.abs(x);
  if (abs !== 0 && (abs >= 1e16 || abs < 1e-4)) return x.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
  return Number.isInteger(x) ? `${x}.0` : String(x);
}

/** repr(v) of a JSON value as Python writes it (None, True, 'text', [1, 2], {'k': 'v'}). */
export function pyRepr(v) {
  if (v === null) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "bigint") return v.toString();
  if (v instanceof JsonFloat) return floatRepr(v.value);
  if (typeof v === "string") return strRepr(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  return `{${Object.entries(v).map(([k, x]) => `${strRepr(k)}: ${pyRepr(x)}`).join(", ")}}`;
}
