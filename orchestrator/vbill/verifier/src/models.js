// The wire models of the verify request (the Python package's models.py), checked the same
// way: every field required and of its exact type (an integer is never a string or a bool),
// unknown fields rejected. A failure names its dotted path, e.g. "receipt.tree_head.signer".

import { JsonFloat, isObject } from "./json.js";

export class FieldError extends Error {
  constructor(path, message) {
    super(`${path}: ${message}`);
    this.path = path;
    this.detail = message;
  }
}

const kind = (v) =>
  v === null
    ? "null"
    : typeof v === "bigint"
      ? "an integer"
      : v instanceof JsonFloat
        ? "a decimal number"
        : Array.isArray(v)
          ? "a list"
          : isObject(v)
            ? "an object"
            : `a ${typeof v}`;

const str = (v, path) => {
  if (typeof v !== "string") throw new FieldError(path, `must be text, got ${kind(v)}`);
  return v;
};
const int = (v, path) => {
  if (typeof v !== "bigint") throw new FieldError(path, `must be a whole number, got ${kind(v)}`);
  return v;
};
// `unit_price_micros`: an integer, a decimal number or decimal text; true/false read as 1.0/0.0.
const price = (v, path) => {
  if (typeof v === "bigint" || typeof v === "string" || v instanceof JsonFloat) return v;
  if (typeof v === "boolean") return new JsonFloat(v ? 1 : 0);
  throw new FieldError(path, `must be a number, got ${kind(v)}`);
};
const dict = (v, path) => {
  if (!isObject(v)) throw new FieldError(path, `must be an object, got ${kind(v)}`);
  return v;
};
const nullable = (type) => (v, path) => (v === null ? null : type(v, path));
/** dict[StrictStr, type]: every value checked, keys as they are (JSON keys are text). */
const mapOf = (type) => (v, path) => {
  if (!isObject(v)) throw new FieldError(path, `must be an object, got ${kind(v)}`);
  const out = Object.create(null);
  for (const [k, x] of Object.entries(v)) out[k] = type(x, `${path}.${k}`);
  return out;
};
/** list[type]. */
const listOf = (type) => (v, path) => {
  if (!Array.isArray(v)) throw new FieldError(path, `must be a list, got ${kind(v)}`);
  return v.map((x, i) => type(x, `${path}.${i}`));
};
const strList = (v, path) => {
  if (!Array.isArray(v)) throw new FieldError(path, `must be a list, got ${kind(v)}`);
  return v.map((x, i) => str(x, `${path}.${i}`));
};

const currency = (v, path) => {
  str(v, path);
  if (!/^[A-Z]{3}$/.test(v)) throw new FieldError(path, "must be a three-letter currency code such as USD");
  return v;
};

function model(fields, defaults = {}) {
  const check = (v, path) => {
    if (!isObject(v)) throw new FieldError(path, `must be an object, got ${kind(v)}`);
    for (const k of Object.keys(v)) {
      if (!Object.hasOwn(fields, k)) throw new FieldError(`${path}.${k}`, "is not an allowed field");
    }
    const out = {};
    for (const [k, type] of Object.entries(fields)) {
      if (!Object.hasOwn(v, k)) {
        if (Object.hasOwn(defaults, k)) out[k] = defaults[k];
        else throw new FieldError(`${path}.${k}`, "is missing");
      } else {
        out[k] = type(v[k], `${path}.${k}`);
      }
    }
    return out;
  };
  return check;
}

export const MeterEvent = model({
  event_id: str,
  event_timestamp: str,
  tenant_id: str,
  api_key_id: str,
  endpoint: str,
  usage_units: int,
  contract_version: str,
  billing_window_id: str,
});

export const TariffSnapshot = model({
  tariff_id: str,
  tariff_version: str,
  tariff_class: str,
  unit_price_micros: price,
  min_charge_micros: int,
  max_charge_micros: int,
  rounding_mode: str,
  currency,
});

const Billing = model({ expected_charge_micros: int, billing_verify_fingerprint: str });

export const BillingRecord = model({
  billing_version: str,
  profileId: str,
  meter_event: MeterEvent,
  tariff_snapshot: TariffSnapshot,
  billing: Billing,
});

const BillingProof = model({
  binding_version: str,
  proof: dict,
  public_signals: strList,
  vkey_sha256: str,
  salt: str,
  account_salt: str,
});

// --- metered records (binding v2, docs/protocol-v2.md), as models.py has them ---

export const MeteredMeterEvent = model({
  event_id: str,
  event_timestamp: str,
  tenant_id: str,
  api_key_id: str,
  endpoint: str,
  usage: mapOf(int),
  contract_version: str,
  billing_window_id: str,
});

const Tier = model({ up_to: nullable(int), unit_price_micros: price });
const Dimension = model({ tiers: listOf(Tier) });

export const MeteredTariffSnapshot = model({
  tariff_id: str,
  tariff_version: str,
  tariff_class: str,
  dimensions: mapOf(Dimension),
  min_charge_micros: int,
  max_charge_micros: int,
  rounding_mode: str,
  currency,
});

export const WindowStateJson = model({ seq: int, units: mapOf(str), amount: str, charge: str });
const Window = model({ seq: int, before: WindowStateJson, after: WindowStateJson });
const MeteredBilling = model({ expected_charge_micros: int, billing_verify_fingerprint: str, window: Window });

export const MeteredBillingRecord = model({
  billing_version: str,
  profileId: str,
  meter_event: MeteredMeterEvent,
  tariff_snapshot: MeteredTariffSnapshot,
  billing: MeteredBilling,
});

// A metered ETH bundle's USD rate snapshot, signed by the attester (docs/protocol-v2.md §12).
const UsdRate = model({ rate: str, source: str, time: str, signature: str });

export const Attestation = model(
  {
    scheme: str,
    signature: str,
    attester: str,
    bundle_digest: str,
    billing_proof: BillingProof,
    usd_rate: nullable(UsdRate),
  },
  { scheme: "eip712", usd_rate: null },
);

const TreeHead = model({
  tree_size: int,
  root_hash: str,
  timestamp: int,
  signer: str,
  signature: str,
});

export const Receipt = model({
  leaf_index: int,
  tree_size: int,
  leaf_hash: str,
  inclusion_proof: strList,
  tree_head: TreeHead,
});
