// The three verdicts of a verify request, judged as the Python package's verify.py judges them,
// with every failure said in plain words for the person reading an invoice:
//
// - verification: the EIP-712 signature, recomputed from the record (never read from it), is by
//   a trusted, unrevoked attester, and the log receipt proves the bundle is in the log;
// - billing_check: the charge recomputed from meter and tariff equals the billed and expected;
// - incircuit_binding_verification: the public signals recomputed from the record's fields and
//   salts equal the proof's, and the Groth16 proof verifies under a trusted key (by hash).
//
// Fails closed: an exception inside a verdict makes that verdict false with its message.

import { canonicalJson, hex, sha256 } from "./canonical.js";
import { LINEAR, METERED, recordBinding } from "./bindings.js";
import { BILLING_VERSION, R, encodeRecord } from "./encoding.js";
import { fromHex, recoverAddress, typedDigest } from "./eth.js";
import { checkProof } from "./groth16.js";
import { JsonFloat, isObject, pyEq } from "./json.js";
import { encodeMeteredRecord, meteredSignals, stateToJson } from "./metered.js";
import { Attestation, BillingRecord, FieldError, MeteredBillingRecord, Receipt } from "./models.js";
import { publicSignals } from "./signals.js";
import { verifyReceipt } from "./translog.js";
import { usageVerdicts } from "./usage.js";

const RECORD_KEYS = ["billing_version", "profileId", "meter_event", "tariff_snapshot", "billing"];
const money = (x) => BigInt(x).toLocaleString("en-US");

/** A verify body that checks a bundle against itself (billed = expected), with its usage
 *  object when it has one. */
export function requestFromBundle(bundle) {
  const b = isObject(bundle) ? bundle : Object.create(null);
  const record = {};
  for (const k of RECORD_KEYS) record[k] = Object.hasOwn(b, k) ? b[k] : null;
  const out = {
    attestation: Object.hasOwn(b, "attestation") ? b.attestation : null,
    receipt: Object.hasOwn(b, "receipt") ? b.receipt : null,
    billed_billing_v2: record, expected_billing_v2: record };
  return Object.hasOwn(b, "usage") ? { ...out, usage: b.usage } : out;
}

export const isVerifyRequest = (v) =>
  isObject(v) && (Object.hasOwn(v, "expected_billing_v2") || Object.hasOwn(v, "billed_billing_v2"));

const PART_NAMES = {
  attestation: "the attestation (signature and proof)",
  receipt: "the transparency-log receipt",
  billed_billing_v2: "the billed record (the invoice line)",
  expected_billing_v2: "the attested record",
};

const showSeq = (v) => v.toString();

/** v1's charge check of one record: the charge and fingerprint from meter and tariff. */
function billingV1(record, e, name, label) {
  const stated = record.billing.expected_charge_micros;
  if (e.charge !== stated) {
    return no(`the charge ${label} is ${money(stated)} but the tariff gives ${money(e.charge)} (micros, ${name})`);
  }
  if (record.billing.billing_verify_fingerprint !== e.fingerprint) {
    return no(`the billing fingerprint ${label} does not match its meter event, tariff and charge (${name})`);
  }
  return null;
}

/** v2's: the charge and the state after recomputed from the window state before. */
function billingV2(record, e, name, label) {
  const w = record.billing.window;
  const stated = record.billing.expected_charge_micros;
  if (e.charge !== stated) {
    return no(`the charge ${label} is ${money(stated)} but the tariff gives ${money(e.charge)} from the window's state before this event (micros, ${name})`);
  }
  if (w.seq !== e.after.seq) {
    return no(`the event's place in its window ${label} is seq ${showSeq(w.seq)}, but the state before it is seq ${showSeq(e.before.seq)}, so it must be seq ${showSeq(e.after.seq)} (${name})`);
  }
  const want = stateToJson(e.after, e.tariff.names);
  const got = w.after;
  const units = Object.keys(got.units);
  const same = got.seq === want.seq && got.amount === want.amount && got.charge === want.charge &&
    units.length === Object.keys(want.units).length && units.every((k) => Object.hasOwn(want.units, k) && want.units[k] === got.units[k]);
  if (!same) {
    return no(`the window's running total after this event ${label} is not what the state before plus this event gives (cumulative charge ${got.charge} stated, ${want.charge} recomputed; ${name})`);
  }
  if (record.billing.billing_verify_fingerprint !== e.fingerprint) {
    return no(`the billing fingerprint ${label} does not match its meter event, tariff, charge and window (${name})`);
  }
  return null;
}

// What differs between the bindings (vbill.verify.verify.Rules): the record model, the
// recomputation and the charge check, by the binding bindings.js gives the record.
const RULES = new Map([
  [LINEAR, { binding: LINEAR, record: BillingRecord, encode: encodeRecord, signals: publicSignals, billing: billingV1 }],
  [METERED, { binding: METERED, record: MeteredBillingRecord, encode: encodeMeteredRecord, signals: meteredSignals, billing: billingV2 }],
]);

function parse(req, rules) {
  const problems = {};
  const model = (check, key) => {
    const value = Object.hasOwn(req, key) ? req[key] : undefined;
    if (value === undefined || value === null) {
      problems[key] = `${PART_NAMES[key]} is missing (${key})`;
      return null;
    }
    try {
      return check(value, key);
    } catch (e) {
      if (!(e instanceof FieldError)) throw e;
      problems[key] = `${PART_NAMES[key]} is malformed: ${e.message}`;
      return null;
    }
  };
  return {
    attestation: model(Attestation, "attestation"),
    expected: model(rules.record, "expected_billing_v2"),
    billed: model(rules.record, "billed_billing_v2"),
    receipt: model(Receipt, "receipt"),
    problems,
  };
}

const no = (reason) => ({ valid: false, reason });

/** Per-record caches: the signature and the binding both need the same recomputation. */
function makeContext(p, trust, rules) {
  const encoded = new Map();
  const enc = (record) => {
    if (!encoded.has(record)) encoded.set(record, rules.encode(record));
    return encoded.get(record);
  };
  const signals = new Map();
  const sig = async (record) => {
    if (!signals.has(record)) signals.set(record, await rules.signals(enc(record), p.attestation.billing_proof));
    return signals.get(record);
  };
  return { p, trust, rules, enc, sig };
}

function withoutProof(billingProof) {
  const { proof: _proof, ...rest } = billingProof;
  return rest;
}

// Digest version 1 ("eip712") covers the whole proof section; version 2 ("eip712-v2") leaves
// out the Groth16 proof, attached after signing (docs/protocol.md §7.1). A metered bundle is
// signed under binding v2's domain with both window state keys (docs/protocol-v2.md §8).
function bundleDigest(record, billingProof, s, scheme, binding) {
  const covered = scheme === "eip712-v2" ? withoutProof(billingProof) : billingProof;
  const contentHash = sha256(canonicalJson({ record, billing_proof: covered }));
  const metered = s.state_key !== undefined;
  return typedDigest(
    { name: "vbill", version: binding.version },
    {
      billingVersion: record.billing_version,
      profileId: record.profileId,
      fingerprint: fromHex(record.billing.billing_verify_fingerprint),
      chargeMicros: record.billing.expected_charge_micros,
      commitment: s.commitment,
      nullifier: s.nullifier,
      vkeyHash: fromHex(billingProof.vkey_sha256),
      contentHash,
      ...(metered ? { prevStateKey: s.prev_state_key, stateKey: s.state_key } : {}),
    },
  );
}

async function checkSignature({ p, trust, sig, rules }) {
  if (!p.attestation || !p.expected) return no(p.problems.attestation || p.problems.expected_billing_v2);
  const att = p.attestation;
  if (att.scheme !== "eip712" && att.scheme !== "eip712-v2") return no(`the attestation uses an unknown signature scheme "${att.scheme}"`);
  const s = await sig(p.expected);
  const digest = bundleDigest(p.expected, att.billing_proof, s, att.scheme, rules.binding);
  if (att.bundle_digest.toLowerCase() !== "0x" + hex(digest)) {
    return no("the bundle was changed after it was signed: its digest no longer matches the record and proof");
  }
  const signer = recoverAddress(digest, att.signature);
  if (signer.toLowerCase() !== att.attester.toLowerCase()) {
    return no(`the signature was not made by the attester the bundle names (${att.attester}); it recovers to ${signer}`);
  }
  const why = trust.attesterProblem(signer, p.receipt ? p.receipt.tree_head.timestamp : null);
  if (why) return no(why);
  if (!p.receipt) return no(p.problems.receipt || "the transparency-log receipt is missing");
  const [ok, reason] = verifyReceipt(p.receipt, digest, trust.logSigners);
  return ok ? { valid: true } : no(reason);
}

function checkBilling({ p, enc, rules }) {
  if (!p.billed || !p.expected) return no(p.problems.billed_billing_v2 || p.problems.expected_billing_v2);
  for (const [name, record, label] of [
    ["billed_billing_v2", p.billed, "on the invoice"],
    ["expected_billing_v2", p.expected, "in the attested record"],
  ]) {
    if (record.billing_version !== BILLING_VERSION) {
      return no(`${name}.billing_version is "${record.billing_version}"; only ${BILLING_VERSION} is supported`);
    }
    const bad = rules.billing(record, enc(record), name, label);
    if (bad) return bad;
  }
  if (p.billed.billing.expected_charge_micros !== p.expected.billing.expected_charge_micros) {
    return no(
      `the charge on the invoice is ${money(p.billed.billing.expected_charge_micros)} but the attested charge is ${money(p.expected.billing.expected_charge_micros)}`,
    );
  }
  const where = firstDifference(p.billed, p.expected);
  if (where !== null) return no(`the record on the invoice differs from the attested record at ${where}`);
  return { valid: true };
}

const sameType = (a, b) =>
  typeof a === typeof b && a instanceof JsonFloat === b instanceof JsonFloat && (a === null) === (b === null);

/** The dotted path of the first field where two records differ (every field, and its type). */
function firstDifference(billed, attested, path = "") {
  if (isObject(billed) && isObject(attested)) {
    const keys = [...Object.keys(attested), ...Object.keys(billed).filter((k) => !Object.hasOwn(attested, k))];
    for (const k of keys) {
      const where = firstDifference(billed[k], attested[k], path ? `${path}.${k}` : k);
      if (where !== null) return where;
    }
    return null;
  }
  // Lists compare as Python compares them: element by element with == (1 equals 1.0 inside).
  const equal = Array.isArray(billed) && Array.isArray(attested)
    ? pyEq(billed, attested)
    : billed instanceof JsonFloat && attested instanceof JsonFloat ? billed.value === attested.value : billed === attested;
  return equal && sameType(billed, attested) ? null : path || "record";
}

async function checkBinding({ p, trust, sig, rules }) {
  const BINDING = rules.binding.version;
  const NAMES = rules.binding.signals;
  const signalList = (s) => NAMES.map((n) => s[n]);
  const base = { binding_version: BINDING, commitment_digest: null };
  const fail = (reason, digest = null) => ({ ...base, valid: false, reason, commitment_digest: digest });
  if (!p.attestation || !p.expected) return fail(p.problems.attestation || p.problems.expected_billing_v2);
  const bp = p.attestation.billing_proof;
  if (bp.binding_version !== BINDING) {
    return fail(`the proof is for binding "${bp.binding_version}", not ${BINDING}`);
  }
  const s = await sig(p.expected);
  const digest = s.commitment.toString();
  if (p.expected.billing.expected_charge_micros !== s.charge) {
    return fail(`the attested charge ${money(p.expected.billing.expected_charge_micros)} is not the proved charge ${money(s.charge)}`, digest);
  }
  if (p.billed) {
    const b = await sig(p.billed);
    if (NAMES.some((n) => b[n] !== s[n])) return fail("the record on the invoice is not the one the proof binds", digest);
  }
  const ours = signalList(s).map(String);
  if (bp.public_signals.length !== ours.length) {
    return fail(`the proof carries ${bp.public_signals.length} public signals; the circuit has ${ours.length}`, digest);
  }
  for (let i = 0; i < ours.length; i++) {
    const stated = bp.public_signals[i];
    if (!/^(0|[1-9][0-9]*)$/.test(stated) || stated.length > 77 || BigInt(stated) >= R) {
      return fail(`public signal ${i} (${NAMES[i]}) is not a canonical field element`, digest);
    }
    if (stated !== ours[i]) {
      return fail(`public signal ${i} (${NAMES[i]}) does not match the record: the proof is about different values`, digest);
    }
  }
  const [vkey, why] = trust.vkey(bp.vkey_sha256);
  if (!vkey) return fail(why, digest);
  const [ok, reason] = await checkProof(vkey, signalList(s), bp.proof);
  return ok ? { ...base, valid: true, commitment_digest: digest } : fail(reason, digest);
}

/** The three verdicts of something that cannot be read as a bundle (unreadable_result). */
export function unreadable(reason) {
  const no = { valid: false, reason };
  return {
    verification: no,
    billing_check: no,
    incircuit_binding_verification: { ...no, binding_version: LINEAR.version, commitment_digest: null },
    valid: false,
    warnings: [],
  };
}

async function guard(fn, fallback) {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof FieldError) return fallback(`a field is not valid: ${e.message}`);
    return fallback(`could not be checked: ${e?.message || String(e)}`);
  }
}

/** Judge a verify request (parsed JSON); never throws. */
export async function verifyRequest(req, trust) {
  const body = isObject(req) ? req : Object.create(null);
  const rules = RULES.get(recordBinding(body.expected_billing_v2));
  const p = parse(body, rules);
  const ctx = makeContext(p, trust, rules);
  const [verification, billing_check] = usageVerdicts(
    body,
    await guard(() => checkSignature(ctx), no),
    await guard(() => checkBilling(ctx), no),
  );
  const incircuit_binding_verification = await guard(
    () => checkBinding(ctx),
    (r) => ({ valid: false, reason: r, binding_version: rules.binding.version, commitment_digest: null }),
  );
  const sha = p.attestation?.billing_proof.vkey_sha256;
  const warnings =
    sha && trust.insecureVkeys.has(sha)
      ? [`the verification key ${sha.slice(0, 16)}… comes from a dev-insecure setup: its secrets are public, so anyone can forge proofs under it (not for real billing)`]
      : [];
  return {
    verification,
    billing_check,
    incircuit_binding_verification,
    valid: verification.valid && billing_check.valid && incircuit_binding_verification.valid,
    warnings,
  };
}
