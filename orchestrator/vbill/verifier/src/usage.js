// A metered bundle's usage object and its USD rate snapshot, checked as the Python package's
// vbill.bundle.usage checks them (docs/protocol-v2.md §12): the snapshot's shape and the
// attester's signature over this bundle's digest join `verification`; a stated usage object's
// units, total and costs (cost_usd = cost_eth × rate, exact decimal arithmetic on BigInt, never
// a float) join `billing_check`. A bundle with neither verifies as before.

import { floatText } from "./canonical.js";
import { fromHex, recoverAddress, usdRateDigest } from "./eth.js";
import { JsonFloat, isObject, pyEq } from "./json.js";

const RATE = /^(0|[1-9][0-9]{0,11})(\.[0-9]{0,7}[1-9])?$/;
// Python's \d (str patterns) is any Unicode decimal digit.
const TIME = /^\p{Nd}{4}-\p{Nd}{2}-\p{Nd}{2}T\p{Nd}{2}:\p{Nd}{2}:\p{Nd}{2}\.\p{Nd}{3}Z$/u;
const MICROS_DECIMALS = 6;

const get = (o, k) => (Object.hasOwn(o, k) ? o[k] : null);

/** usage.snapshot_shape_problem: why rate, source or time is not well formed (null: it is). */
export function snapshotShapeProblem(rate, source, time) {
  if (!(typeof rate === "string" && RATE.test(rate) && rate !== "0")) {
    return 'rate: must be a decimal string > 0 with at most 8 decimals, e.g. "3150.25"';
  }
  const length = typeof source === "string" ? [...source].length : 0; // code points, as len()
  if (!(length > 0 && length <= 200)) return "source: must be a name of 1 to 200 characters";
  if (!(typeof time === "string" && TIME.test(time))) {
    return "time: must be RFC 3339 UTC with milliseconds, e.g. 2026-05-29T12:00:00.000Z";
  }
  return null;
}

/** usage.snapshot_problem: why the attestation's rate snapshot does not hold (null: it holds,
 *  or there is none). Throws where Python raises (text it cannot encode as UTF-8). */
export function snapshotProblem(att) {
  const snap = get(att, "usd_rate");
  if (snap === null) return null;
  if (!isObject(snap)) return "attestation.usd_rate: expected an object";
  const shape = snapshotShapeProblem(get(snap, "rate"), get(snap, "source"), get(snap, "time"));
  if (shape) return `attestation.usd_rate.${shape}`;
  if (/\p{Cs}/u.test(snap.source)) throw new Error("attestation.usd_rate.source: not valid UTF-8 text");
  const digest = usdRateDigest(fromHex(String(get(att, "bundle_digest"))), snap.rate, snap.source, snap.time);
  let signer;
  try {
    signer = recoverAddress(digest, String(get(snap, "signature")));
  } catch (e) {
    return `attestation.usd_rate.signature: ${e.message}`;
  }
  if (signer.toLowerCase() !== String(get(att, "attester")).toLowerCase()) {
    return (
      "attestation.usd_rate: its signature is not the attester's over this bundle " +
      "(the rate, source or time was edited, or the snapshot belongs to another bundle)"
    );
  }
  return null;
}

/** A decimal string as Python's Decimal reads it (sign, digits, fraction, exponent): an exact
 *  integer and its number of decimals. Throws on what Decimal refuses. */
function parseDecimal(text) {
  const m = /^\s*([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?\s*$/.exec(text);
  if (!m || !(m[2] || m[3])) throw new Error(`the rate ${JSON.stringify(text)} is not a decimal number`);
  const frac = m[3] ?? "";
  let n = BigInt(`${m[1]}${m[2] || "0"}${frac}`);
  let scale = frac.length - Number(m[4] ?? 0);
  if (scale < 0) {
    n *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { n, scale };
}

/** n / 10^scale exactly, trailing zeros of the fraction dropped (Decimal's format "f"). */
function decimalText(n, scale) {
  const digits = (n < 0n ? -n : n).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale).replace(/0+$/, "");
  return `${n < 0n ? "-" : ""}${whole}${frac ? `.${frac}` : ""}`;
}

/** usage.cost_eth: a charge in micro-ETH as decimal ETH. */
export const costEth = (micros) => decimalText(micros, MICROS_DECIMALS);

/** usage.cost_usd: cost_eth × rate, exactly, trailing zeros dropped. */
export function costUsd(micros, rate) {
  const r = parseDecimal(rate);
  return decimalText(micros * r.n, r.scale + MICROS_DECIMALS);
}

/** usage.usage_of: units per dimension, their total, and for an ETH tariff cost_eth and,
 *  with a rate snapshot, cost_usd. */
export function usageOf(record, att) {
  const units = Object.create(null);
  let total = 0n;
  for (const [k, v] of Object.entries(record.meter_event.usage)) {
    units[k] = v;
    total += v;
  }
  const out = { units, total_units: total };
  if (get(record.tariff_snapshot, "currency") === "ETH") {
    const micros = record.billing.expected_charge_micros;
    out.cost_eth = costEth(micros);
    const snap = get(att, "usd_rate");
    if (isObject(snap) && typeof get(snap, "rate") === "string") out.cost_usd = costUsd(micros, snap.rate);
  }
  return out;
}

/** Python's repr of a JSON value, for reasons that read as `vbill verify`'s. */
export function pyRepr(v) {
  if (typeof v === "string") {
    const q = v.includes("'") && !v.includes('"') ? '"' : "'";
    const body = [...v]
      .map((c) => {
        if (c === "\\" || c === q) return `\\${c}`;
        const escapes = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
        if (escapes[c]) return escapes[c];
        const code = c.codePointAt(0);
        return code < 0x20 || code === 0x7f ? `\\x${code.toString(16).padStart(2, "0")}` : c;
      })
      .join("");
    return q + body + q;
  }
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "boolean") return v ? "True" : "False";
  if (v === null || v === undefined) return "None";
  if (v instanceof JsonFloat) return Number.isInteger(v.value) ? `${floatText(v.value)}.0` : String(v.value);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  return `{${Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(", ")}}`;
}

/** Python's sorted() on text: by code point (not by UTF-16 unit). */
function byCodePoint(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
}

/** usage.corrected_by_problem: only the shape of `usage.corrected_by` is checked (no signature
 *  of the bundle covers it; the correction is verified as a document of its own). */
export function correctedByProblem(c) {
  if (isObject(c) && Object.keys(c).length === 0) return null;
  const keys = isObject(c) ? Object.keys(c).sort(byCodePoint) : null;
  if (keys === null || keys.join(",") !== "correction_id,credit_micros") {
    return "usage.corrected_by: expected an object with exactly ['correction_id', 'credit_micros']";
  }
  if (typeof c.correction_id !== "string" || c.correction_id.length === 0) {
    return "usage.corrected_by.correction_id: expected a non-empty string";
  }
  const credit = c.credit_micros;
  const isInt = typeof credit === "bigint" || (typeof credit === "number" && Number.isInteger(credit));
  if (!isInt || BigInt(credit) < 0n || BigInt(credit) >= 2n ** 64n) {
    return "usage.corrected_by.credit_micros: expected an integer in [0, 2^64)";
  }
  return null;
}

/** usage.usage_problem: why a stated usage object is not what the record and its rate
 *  snapshot give (null: it is, or none is stated), naming the first member that differs. */
export function usageProblem(usage, record, att) {
  if (usage === null || usage === undefined) return null;
  if (!isObject(usage)) return "usage: expected an object";
  const meter = get(record, "meter_event");
  if (!isObject(meter) || !isObject(get(meter, "usage"))) return "usage: only a metered bundle carries a usage object";
  const expected = usageOf(record, att);
  const why = correctedByProblem(Object.hasOwn(usage, "corrected_by") ? usage.corrected_by : {});
  if (why !== null) return why;
  const keys = [...new Set([...Object.keys(usage), ...Object.keys(expected)])].sort(byCodePoint);
  for (const key of keys) {
    if (key === "corrected_by") continue;
    const stated = get(usage, key);
    const derived = get(expected, key);
    if (pyEq(stated, derived)) continue;
    if (key === "cost_usd" && derived === null) {
      return "usage.cost_usd: stated, but the bundle has no signed rate snapshot";
    }
    if (key === "cost_usd") {
      return `usage.cost_usd: ${pyRepr(stated)} but cost_eth × rate = ${expected.cost_eth} × ${att.usd_rate.rate} = ${pyRepr(derived)}`;
    }
    return `usage.${key}: ${pyRepr(stated)} but the record gives ${pyRepr(derived)}`;
  }
  return null;
}

/** verify._snapshot_verdict and verify._usage_verdict: the snapshot joins `verification` (when
 *  it holds), the usage object joins `billing_check` (when it holds); each is guarded on its
 *  own, as in Python, so an error in one fails that verdict and never the other. */
export function usageVerdicts(req, verification, billing) {
  const att = isObject(req.attestation) ? req.attestation : Object.create(null);
  let v = verification;
  try {
    const snap = verification.valid ? snapshotProblem(att) : null;
    if (snap) v = { valid: false, reason: snap };
  } catch (e) {
    v = { valid: false, reason: `attestation.usd_rate: ${e?.message || String(e)}` };
  }
  let b = billing;
  try {
    const record = req.billed_billing_v2;
    if (billing.valid && isObject(record)) {
      const why = usageProblem(Object.hasOwn(req, "usage") ? req.usage : null, record, att);
      if (why) b = { valid: false, reason: why };
    }
  } catch (e) {
    b = { valid: false, reason: `usage: ${e?.message || String(e)}` };
  }
  return [v, b];
}
