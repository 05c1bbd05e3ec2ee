// Binding v2 (metered tariffs, docs/protocol-v2.md), as the Python package
// computes it (vbill.encode.metered, vbill.bundle.metered, vbill.zk.witness_metered): the
// tariff padded to 4 dimensions × 4 tiers, tiers on the window's cumulative usage, rounding on
// the window's exact amount, the window state in JSON, and the seven public signals.

import { canonicalJson, sha256Hex } from "./canonical.js";
import {
  ROUNDING_MODES,
  encodeEnum,
  encodePrice,
  encodeString,
  encodeTimestamp,
  encodeU64,
  hashString,
  parseFieldElement,
} from "./encoding.js";
import { METERED } from "./bindings.js";
import { pyRepr } from "./json.js";
import { FieldError } from "./models.js";
import { loadPoseidon } from "./signals.js";

const U64 = 1n << 64n;
const UNBOUNDED = U64 - 1n;
const AMOUNT_LIMIT = 1n << 130n;
const SCALE = 1_000_000n;
const MAX_DIMENSIONS = 4;
const MAX_TIERS = 4;
const DIMENSION_NAME = /^[a-z][a-z0-9_]{0,31}$/;
const DECIMAL = /^(0|[1-9][0-9]*)$/;

function encodeDimension(name, dim, path) {
  if (!DIMENSION_NAME.test(name)) throw new FieldError(path, "dimension names must match ^[a-z][a-z0-9_]{0,31}$");
  const tiers = dim.tiers;
  if (tiers.length < 1 || tiers.length > MAX_TIERS) throw new FieldError(`${path}.tiers`, `must be a list of 1 to ${MAX_TIERS} tiers`);
  const prices = [];
  const bounds = [];
  let previous = 0n;
  tiers.forEach((tier, i) => {
    const at = `${path}.tiers[${i}]`;
    prices.push(encodePrice(tier.unit_price_micros, `${at}.unit_price_micros`));
    const last = i === tiers.length - 1;
    if (tier.up_to === null) {
      if (!last) throw new FieldError(`${at}.up_to`, "only the last tier is unbounded (null)");
      return;
    }
    if (last) throw new FieldError(`${at}.up_to`, "the last tier must be unbounded (null)");
    const upTo = encodeU64(tier.up_to, `${at}.up_to`);
    if (upTo <= previous) throw new FieldError(`${at}.up_to`, "must be greater than the previous bound (and 0)");
    if (upTo >= UNBOUNDED) throw new FieldError(`${at}.up_to`, "must be below 2^64 - 1 (cumulative units are)");
    bounds.push(upTo);
    previous = upTo;
  });
  while (prices.length < MAX_TIERS) prices.push(0n);
  while (bounds.length < MAX_TIERS - 1) bounds.push(UNBOUNDED);
  return [prices, bounds];
}

/** A metered tariff snapshot (a checked model), encoded and padded to 4 × 4. */
export function encodeMeteredTariff(t, path = "tariff_snapshot") {
  const f = (k) => `${path}.${k}`;
  const names = Object.keys(t.dimensions).sort();
  if (names.length < 1 || names.length > MAX_DIMENSIONS) throw new FieldError(f("dimensions"), `must price 1 to ${MAX_DIMENSIONS} dimensions`);
  const prices = [];
  const upTo = [];
  for (const name of names) {
    const [p, b] = encodeDimension(name, t.dimensions[name], `${f("dimensions")}.${name}`);
    prices.push(p);
    upTo.push(b);
  }
  while (prices.length < MAX_DIMENSIONS) {
    prices.push([0n, 0n, 0n, 0n]);
    upTo.push([UNBOUNDED, UNBOUNDED, UNBOUNDED]);
  }
  const tariff = {
    tariffId: encodeString(t.tariff_id, f("tariff_id")),
    tariffVersion: encodeString(t.tariff_version, f("tariff_version")),
    tariffClass: encodeEnum(t.tariff_class, f("tariff_class"), new Map([["metered", 2n]])),
    names,
    prices,
    upTo,
    min: encodeU64(t.min_charge_micros, f("min_charge_micros")),
    max: encodeU64(t.max_charge_micros, f("max_charge_micros")),
    rounding: encodeEnum(t.rounding_mode, f("rounding_mode"), ROUNDING_MODES),
    currency: encodeString(t.currency, f("currency")),
  };
  if (tariff.min > tariff.max) throw new FieldError(f("min_charge_micros"), "must not exceed max_charge_micros");
  return tariff;
}

/** A metered meter event (a checked model); units in the tariff's dimension order, padded. */
export function encodeMeteredMeter(m, tariff, path = "meter_event") {
  const f = (k) => `${path}.${k}`;
  for (const name of Object.keys(m.usage)) {
    if (!tariff.names.includes(name)) throw new FieldError(`${f("usage")}.${name}`, "is not priced by the tariff");
  }
  const units = tariff.names.map((n) => encodeU64(Object.hasOwn(m.usage, n) ? m.usage[n] : 0n, `${f("usage")}.${n}`));
  while (units.length < MAX_DIMENSIONS) units.push(0n);
  return {
    eventId: encodeString(m.event_id, f("event_id")),
    timestamp: encodeTimestamp(m.event_timestamp, f("event_timestamp")),
    tenantId: encodeString(m.tenant_id, f("tenant_id")),
    apiKeyId: encodeString(m.api_key_id, f("api_key_id")),
    endpoint: encodeString(m.endpoint, f("endpoint")),
    units,
    contractVersion: encodeString(m.contract_version, f("contract_version")),
    windowId: encodeString(m.billing_window_id, f("billing_window_id")),
  };
}

function decimal(v, path, limit) {
  if (v.length > 40 || !DECIMAL.test(v)) throw new FieldError(path, "must be a canonical decimal string");
  const x = BigInt(v);
  if (x >= limit) throw new FieldError(path, `must be below 2^${limit.toString(2).length - 1}`);
  return x;
}

/** A window state in clear → {seq, units[4], amount, charge}; units named exactly as priced. */
export function stateFromJson(s, names, path) {
  const given = Object.keys(s.units).sort();
  if (given.length !== names.length || given.some((n, i) => n !== names[i])) {
    throw new FieldError(`${path}.units`, `names ${pyRepr(given)} but the tariff prices ${pyRepr(names)} (a window's dimensions never change)`);
  }
  if (s.seq < 0n || s.seq >= U64) throw new FieldError(`${path}.seq`, "must be an integer 0 ≤ v < 2^64");
  const units = names.map((n) => decimal(s.units[n], `${path}.units.${n}`, U64));
  while (units.length < MAX_DIMENSIONS) units.push(0n);
  return {
    seq: s.seq,
    units,
    amount: decimal(s.amount, `${path}.amount`, AMOUNT_LIMIT),
    charge: decimal(s.charge, `${path}.charge`, U64),
  };
}

export function stateToJson(state, names) {
  const units = Object.create(null);
  names.forEach((n, d) => (units[n] = state.units[d].toString()));
  return { seq: state.seq, units, amount: state.amount.toString(), charge: state.charge.toString() };
}

export const windowJson = (before, after, names) => ({
  seq: after.seq,
  before: stateToJson(before, names),
  after: stateToJson(after, names),
});

const min = (a, b) => (a < b ? a : b);

/** F(x): the exact cost (10^-6 micros) of cumulative units [0, x) under one dimension's tiers. */
function tierCost(x, upTo, prices) {
  let cost = 0n;
  let lo = 0n;
  prices.forEach((price, t) => {
    const hi = t < upTo.length ? upTo[t] : U64;
    cost += price * (min(x, hi) - min(x, lo));
    lo = hi;
  });
  return cost;
}

export function roundMicros(amount, rounding) {
  const q = amount / SCALE;
  const rem = amount % SCALE;
  return q + (rounding === 1n && rem > 0n ? 1n : 0n) + (rounding === 2n && rem >= SCALE / 2n ? 1n : 0n);
}

/** [charge, state after] of one event from the window's state before; FieldError on overflow. */
export function transition(tariff, meter, before) {
  const units = before.units.map((a, d) => a + meter.units[d]);
  units.forEach((total, d) => {
    if (total >= U64) {
      throw new FieldError(`meter_event.usage.${tariff.names[d] ?? `[${d}]`}`, "cumulative units in the window reach 2^64");
    }
  });
  let raw = 0n;
  before.units.forEach((a, d) => {
    raw += tierCost(a + meter.units[d], tariff.upTo[d], tariff.prices[d]) - tierCost(a, tariff.upTo[d], tariff.prices[d]);
  });
  const amount = before.amount + raw;
  if (amount >= AMOUNT_LIMIT) throw new FieldError("window.after.amount", "the window's cumulative amount reaches 2^130");
  const delta = roundMicros(amount, tariff.rounding) - roundMicros(before.amount, tariff.rounding);
  const charge = delta < tariff.min ? tariff.min : delta > tariff.max ? tariff.max : delta;
  if (before.charge + charge >= U64) throw new FieldError("window.after.charge", "the window's cumulative charge reaches 2^64");
  if (before.seq + 1n >= U64) throw new FieldError("window.after.seq", "the window has 2^64 - 1 events");
  return [charge, { seq: before.seq + 1n, units, amount, charge: before.charge + charge }];
}

/** [credit, state after] of a correction taking `units` (4, padded) back from the window's state
 *  `before`, priced by the corrected event's tariff (correction_transition,
 *  docs/protocol-corrections.md §2); FieldError naming the field as Python's InputError does. */
export function correctionTransition(tariff, units, before) {
  const b = before.units.map((a, d) => {
    const u = units[d];
    if (typeof u !== "bigint" || u < 0n || u > a) {
      throw new FieldError(`correction.usage.${tariff.names[d] ?? `[${d}]`}`, "must be 0 ≤ units ≤ the window's cumulative units");
    }
    return a - u;
  });
  let raw = 0n;
  b.forEach((x, d) => {
    raw += tierCost(x + units[d], tariff.upTo[d], tariff.prices[d]) - tierCost(x, tariff.upTo[d], tariff.prices[d]);
  });
  const amount = before.amount - raw;
  if (amount < 0n) throw new FieldError("window.after.amount", "the correction takes back more than the window's amount (its prices changed)");
  const credit = min(roundMicros(before.amount, tariff.rounding) - roundMicros(amount, tariff.rounding), before.charge);
  if (before.seq + 1n >= U64) throw new FieldError("window.after.seq", "the window has 2^64 - 1 entries");
  return [credit, { seq: before.seq + 1n, units: b, amount, charge: before.charge - credit }];
}

/** The encoded record: tariff, meter, the state before it claims, and the state it leaves. */
export function encodeMeteredRecord(record) {
  const tariff = encodeMeteredTariff(record.tariff_snapshot);
  const meter = encodeMeteredMeter(record.meter_event, tariff);
  const before = stateFromJson(record.billing.window.before, tariff.names, "billing.window.before");
  const [charge, after] = transition(tariff, meter, before);
  const window = windowJson(before, after, tariff.names);
  const fp = sha256Hex(canonicalJson({
    meter_event: record.meter_event,
    tariff_snapshot: record.tariff_snapshot,
    expected_charge_micros: charge,
    window,
  }));
  return { tariff, meter, before, after, charge, window, fingerprint: fp };
}

/** Up to three 64-bit values in one field element, the first in the low bits (pack). */
export function pack(...vs) {
  if (vs.some((v) => v < 0n || v >= U64)) throw new Error("AssertionError"); // Python asserts
  return vs.reduce((acc, v, i) => acc + (v << (64n * BigInt(i))), 0n);
}

/** Poseidon on BigInts, once its constants are loaded. */
export async function hasher() {
  const poseidon = await loadPoseidon();
  return (xs) => poseidon.F.toObject(poseidon(xs));
}

/** The hashes of one metered event under its tariff and account salt (docs/protocol-v2.md §4):
 *  the tariff key, its window's state key of a state, its commitment, nullifier, tenant key. */
export function meteredKeys(H, t, m, accountSalt) {
  const words = [t.tariffClass, t.rounding, t.min, t.max];
  for (let d = 0; d < MAX_DIMENSIONS; d++) words.push(...t.prices[d], ...t.upTo[d]);
  const packed = [];
  for (let i = 0; i < words.length; i += 3) packed.push(pack(...words.slice(i, i + 3)));
  const tariffKey = H([t.tariffId, t.tariffVersion, t.currency, hashString(t.names.join(",")), ...packed, accountSalt]);
  const u = m.units;
  return {
    tariffKey,
    stateKey: (s) =>
      H([m.tenantId, m.windowId, t.tariffId, pack(s.seq, s.units[0], s.units[1]), pack(s.units[2], s.units[3], s.charge), s.amount, accountSalt]),
    commitment: (charge, salt) =>
      H([METERED.domainTag, m.eventId, m.tenantId, m.apiKeyId, m.endpoint, m.contractVersion, m.windowId,
        pack(m.timestamp, u[0], u[1]), pack(u[2], u[3], charge), tariffKey, salt]),
    nullifier: H([m.tenantId, m.eventId, accountSalt]),
    tenantKey: H([m.tenantId, accountSalt]),
  };
}

/** The seven v2 signals (BigInt) of an encoded record under the bundle's salts. */
export async function meteredSignals(enc, billingProof) {
  const salt = parseFieldElement(billingProof.salt, "billing_proof.salt");
  const accountSalt = parseFieldElement(billingProof.account_salt, "billing_proof.account_salt");
  const k = meteredKeys(await hasher(), enc.tariff, enc.meter, accountSalt);
  return {
    commitment: k.commitment(enc.charge, salt),
    charge: enc.charge,
    tariff_key: k.tariffKey,
    nullifier: k.nullifier,
    tenant_key: k.tenantKey,
    prev_state_key: k.stateKey(enc.before),
    state_key: k.stateKey(enc.after),
  };
}
