// The canonical encoding of a meter event and a tariff into BN254 field elements, the charge,
// and the fingerprint, exactly as the Python package computes them (docs/protocol.md).

import { canonicalJson, floatDecimal, sha256, sha256Hex, utf8 } from "./canonical.js";
import { JsonFloat } from "./json.js";
import { FieldError } from "./models.js";

export const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
export const P = 21888242871839275222246405745257275088696311157297823662689037894645226208583n;
export const BILLING_VERSION = "v2";
const U64 = 1n << 64n;
const PRICE_SCALE = 1_000_000n;
const MAX_STRING_CHARS = 256;
const TARIFF_CLASSES = new Map([["usage_linear", 1n]]);
// Active ISO 4217 codes, and ETH: the only accepted currencies (a currency is hashed, so the set
// is part of the protocol; tests/verify/test_verifier_page.py checks it equals encoding.ISO_4217).
export const ISO_4217 = `
  AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
  BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP
  DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
  IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
  MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
  PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
  SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS
  VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA
  XXX YER ZAR ZMW ZWG ZWL
`.split(/\s+/).filter(Boolean);
const CURRENCIES = new Set([...ISO_4217, "ETH"]);
export const ROUNDING_MODES = new Map([
  ["floor", 0n],
  ["ceil", 1n],
  ["half_up", 2n],
]);

const bytesToBig = (b) => BigInt("0x" + (Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("") || "0"));

/** The string rule: int(SHA-256(utf8(s))) mod r. */
export function hashString(s) {
  if (!s.isWellFormed()) throw new Error("text is not valid Unicode (a lone surrogate)");
  return bytesToBig(sha256(utf8(s))) % R;
}

export function encodeString(v, path) {
  if (v.length === 0) throw new FieldError(path, "must not be empty");
  if ([...v].length > MAX_STRING_CHARS) {
    throw new FieldError(path, `must be at most ${MAX_STRING_CHARS} characters`);
  }
  if (!v.isWellFormed()) throw new FieldError(path, "must be valid Unicode (no lone surrogates)");
  return hashString(v);
}

export function encodeU64(v, path) {
  if (v < 0n || v >= U64) throw new FieldError(path, "must be a whole number 0 ≤ v < 2^64");
  return v;
}

export function encodePrice(v, path) {
  let scaled;
  if (typeof v === "bigint") {
    if (v < 0n) throw new FieldError(path, "must not be negative");
    scaled = v * PRICE_SCALE;
  } else if (v instanceof JsonFloat) {
    if (!Number.isFinite(v.value)) throw new FieldError(path, "must be a finite number");
    const d = floatDecimal(v.value);
    if (d.neg) throw new FieldError(path, "must not be negative");
    if (d.exp + 6 < 0) throw new FieldError(path, "must have at most 6 decimal places");
    scaled = BigInt(d.digits) * 10n ** BigInt(d.exp + 6);
  } else {
    const m = v.length <= 64 && /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/.exec(v);
    if (!m) throw new FieldError(path, "must be a plain decimal number such as 120 or 0.15");
    const frac = (m[2] || "").replace(/0+$/, "");
    if (frac.length > 6) throw new FieldError(path, "must have at most 6 decimal places");
    scaled = BigInt(m[1] + frac.padEnd(6, "0"));
  }
  if (scaled >= U64) throw new FieldError(path, "× 10^6 (price_scaled) must be less than 2^64");
  return scaled;
}

const TIMESTAMP =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z$/;

export function encodeTimestamp(v, path) {
  const m = TIMESTAMP.exec(v);
  if (!m) {
    throw new FieldError(path, "must be a UTC time with an explicit Z, e.g. 2026-05-29T12:00:00.000Z");
  }
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  const fraction = m[7] || "";
  if (/[1-9]/.test(fraction.slice(3))) throw new FieldError(path, "must not be more precise than milliseconds");
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, 0);
  const ok =
    y >= 1 && date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d &&
    date.getUTCHours() === h && date.getUTCMinutes() === mi && date.getUTCSeconds() === s;
  if (!ok) throw new FieldError(path, "is not a valid date and time");
  const ms = BigInt(date.getTime()) + BigInt((fraction + "000").slice(0, 3));
  if (ms < 0n) throw new FieldError(path, "must not be before 1970-01-01T00:00:00Z");
  return ms;
}

function encodeCurrency(v, path) {
  if (!CURRENCIES.has(v)) throw new FieldError(path, "must be an ISO 4217 currency code (e.g. USD, EUR) or ETH");
  return hashString(v);
}

export function encodeEnum(v, path, choices) {
  if (!choices.has(v)) throw new FieldError(path, `must be one of: ${[...choices.keys()].join(", ")}`);
  return choices.get(v);
}

/** The 8 meter field elements, in circuit order. */
export function encodeMeter(m, path = "meter_event") {
  const f = (k) => `${path}.${k}`;
  return [
    encodeString(m.event_id, f("event_id")),
    encodeTimestamp(m.event_timestamp, f("event_timestamp")),
    encodeString(m.tenant_id, f("tenant_id")),
    encodeString(m.api_key_id, f("api_key_id")),
    encodeString(m.endpoint, f("endpoint")),
    encodeU64(m.usage_units, f("usage_units")),
    encodeString(m.contract_version, f("contract_version")),
    encodeString(m.billing_window_id, f("billing_window_id")),
  ];
}

/** The 8 tariff field elements, in circuit order (unit_price_micros → price_scaled). */
export function encodeTariff(t, path = "tariff_snapshot") {
  const f = (k) => `${path}.${k}`;
  const out = [
    encodeString(t.tariff_id, f("tariff_id")),
    encodeString(t.tariff_version, f("tariff_version")),
    encodeEnum(t.tariff_class, f("tariff_class"), TARIFF_CLASSES),
    encodePrice(t.unit_price_micros, f("unit_price_micros")),
    encodeU64(t.min_charge_micros, f("min_charge_micros")),
    encodeU64(t.max_charge_micros, f("max_charge_micros")),
    encodeEnum(t.rounding_mode, f("rounding_mode"), ROUNDING_MODES),
    encodeCurrency(t.currency, f("currency")),
  ];
  if (out[4] > out[5]) throw new FieldError(f("min_charge_micros"), "must not exceed max_charge_micros");
  return out;
}

/** The charge in micros: usage × price, rounded as the tariff says, clamped to [min, max]. */
export function chargeFor(meter, tariff) {
  const usage = meter[5];
  const [, , , priceScaled, min, max, rounding] = tariff;
  const raw = usage * priceScaled;
  const q = raw / PRICE_SCALE;
  const rem = raw % PRICE_SCALE;
  let rounded = q;
  if (rounding === 1n && rem > 0n) rounded += 1n;
  if (rounding === 2n && rem >= PRICE_SCALE / 2n) rounded += 1n;
  return rounded < min ? min : rounded > max ? max : rounded;
}

/** billing_verify_fingerprint: SHA-256 hex of the canonical meter, tariff and charge. */
export function fingerprint(meterJson, tariffJson, charge) {
  return sha256Hex(
    canonicalJson({ meter_event: meterJson, tariff_snapshot: tariffJson, expected_charge_micros: charge }),
  );
}

/** Encoding, charge and fingerprint of one record's meter + tariff. */
export function encodeRecord(record) {
  const meter = encodeMeter(record.meter_event);
  const tariff = encodeTariff(record.tariff_snapshot);
  const charge = chargeFor(meter, tariff);
  return { meter, tariff, charge, fingerprint: fingerprint(record.meter_event, record.tariff_snapshot, charge) };
}

const PY_TYPE = (v) =>
  v === null ? "NoneType" : typeof v === "boolean" ? "bool" : typeof v === "bigint" ? "int" : v instanceof JsonFloat ? "float" : Array.isArray(v) ? "list" : "dict";

/** A canonical decimal field element 0 ≤ x < r (x and x + r must never both pass), refused in
 *  vbill.zk.field.parse_field_element's words. */
export function parseFieldElement(v, path) {
  if (typeof v !== "string") throw new FieldError(path, `must be a decimal string field element, got ${PY_TYPE(v)}`);
  if (v.length > 77 || !/^(0|[1-9][0-9]*)$/.test(v)) {
    throw new FieldError(path, "must be a canonical decimal string (digits only, no sign, no leading zeros)");
  }
  const x = BigInt(v);
  if (x >= R) throw new FieldError(path, "must be less than the BN254 scalar field modulus r");
  return x;
}
