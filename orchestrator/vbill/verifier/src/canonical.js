// Canonical JSON of the fingerprint, content hash and trust document: RFC 8785 with every
// number written as a decimal string, so 2^64 and 0.15 hash the same in every language.

import canonicalize from "canonicalize";
import { sha256 } from "@noble/hashes/sha2.js";
import { JsonFloat, isObject } from "./json.js";

export const utf8 = (s) => new TextEncoder().encode(s);
export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** The exact decimal of a float's shortest repr: sign, digits and a power of ten. */
export function floatDecimal(x) {
  const [mant, exp] = x.toExponential().split("e");
  const neg = mant.startsWith("-") || Object.is(x, -0);
  const [whole, frac = ""] = mant.replace("-", "").split(".");
  let digits = (whole + frac).replace(/^0+(?=.)/, "");
  let e = Number(exp) - frac.length;
  if (/^0+$/.test(digits)) return { neg, digits: "0", exp: 0 };
  while (digits.endsWith("0")) {
    digits = digits.slice(0, -1);
    e++;
  }
  return { neg, digits, exp: e };
}

/** Python's format(Decimal(repr(x)).normalize(), "f"). */
export function floatText(x) {
  const { neg, digits, exp } = floatDecimal(x);
  let body;
  if (exp >= 0) body = digits + "0".repeat(digits === "0" ? 0 : exp);
  else if (-exp >= digits.length) body = "0." + "0".repeat(-exp - digits.length) + digits;
  else body = digits.slice(0, exp) + "." + digits.slice(exp);
  return (neg ? "-" : "") + body;
}

function numbersAsStrings(v) {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof JsonFloat) return floatText(v.value);
  if (Array.isArray(v)) return v.map(numbersAsStrings);
  if (isObject(v)) {
    const out = Object.create(null);
    for (const k of Object.keys(v)) out[k] = numbersAsStrings(v[k]);
    return out;
  }
  return v;
}

/** UTF-8 bytes of the canonical JSON (numbers as decimal strings). */
export function canonicalJson(value) {
  return utf8(canonicalize(numbersAsStrings(value))); // throws on a lone surrogate
}

export const sha256Hex = (bytes) => hex(sha256(bytes));
export { sha256 };
