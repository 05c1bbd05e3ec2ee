// Correction documents (docs/protocol-corrections.md), judged as vbill.verify.correction judges
// them, each failed verdict with the reason `vbill verify` gives, word for word:
//
// - a correction of a metered event (binding v2c, §7): the EIP-712 digest recomputed with its
//   nine public signals recomputed (never read from the document), signed by a trusted attester
//   and logged; the credit and the state after re-priced from the window's state before by the
//   original's tariff; the signals equal to the proof's, whose Groth16 proof verifies under the
//   trusted v2c key the document names;
// - a void of a binding v1 event (§9): the digest signed and logged; the original's charge
//   recomputed from its opening, which is the credit; the original's commitment and nullifier
//   recomputed from the opening and its salts.
//
// Fails closed: an exception inside a verdict makes that verdict false with its message.

import { CORRECTION, VOID, correctionKind } from "./bindings.js";
import { canonicalJson, hex, sha256, utf8 } from "./canonical.js";
import { encodeRecord, encodeString, parseFieldElement } from "./encoding.js";
import { concat, eip712, fromHex, keccak, recoverAddress, uint256 } from "./eth.js";
import { checkProof } from "./groth16.js";
import { isObject, pyEq, pyInt, pyKind, pyRepr } from "./json.js";
import {
  correctionTransition,
  encodeMeteredMeter,
  encodeMeteredTariff,
  hasher,
  meteredKeys,
  pack,
  stateFromJson,
  stateToJson,
} from "./metered.js";
import {
  FieldError,
  MeterEvent,
  MeteredMeterEvent,
  MeteredTariffSnapshot,
  Receipt,
  TariffSnapshot,
  WindowStateJson,
} from "./models.js";
import { publicSignals } from "./signals.js";
import { verifyReceipt } from "./translog.js";

const RECORD_KEYS = ["correction_version", "correction", "original", "billing"];
const CORRECTION_KEYS = ["tenant_id", "corrects", "correction_id", "reason", "usage"];
const DECIMAL_INT = /^(0|[1-9][0-9]*)$/;
const U64 = 1n << 64n;
const CORRECTION_TYPE =
  "BillingCorrection(string correctionVersion,uint256 creditMicros,uint256 commitment," +
  "uint256 nullifier,uint256 corrects,uint256 correctsNullifier,uint256 prevStateKey," +
  "uint256 stateKey,bytes32 vkeyHash,bytes32 contentHash)";
const VOID_TYPE =
  "BillingVoid(string correctionVersion,uint256 creditMicros,uint256 corrects," +
  "uint256 correctsNullifier,bytes32 contentHash)";

/** An error worded as Python's: str(KeyError('x')) is "'x'". */
class PyError extends Error {}

/** obj[key] as Python reads a JSON value. */
function item(obj, key) {
  if (isObject(obj)) {
    if (Object.hasOwn(obj, key)) return obj[key];
    throw new PyError(`'${key}'`);
  }
  if (Array.isArray(obj)) throw new PyError("list indices must be integers or slices, not str");
  if (typeof obj === "string") throw new PyError("string indices must be integers, not 'str'");
  throw new PyError(`'${obj === null ? "NoneType" : pyKind(obj)}' object is not subscriptable`);
}

/** obj.get(key) as Python reads a JSON value. */
function get(obj, key) {
  if (isObject(obj)) return Object.hasOwn(obj, key) ? obj[key] : null;
  throw new PyError(`'${obj === null ? "NoneType" : pyKind(obj)}' object has no attribute 'get'`);
}

/** bytes.fromhex (no "0x": Python refuses it) as 32 bytes. */
function bytes32Hex(v) {
  if (typeof v !== "string" || !/^[0-9a-fA-F]{64}$/.test(v)) throw new PyError("vkey_sha256 is not 32 bytes of hex");
  return fromHex(v);
}

/** encode_string: a non-empty text of at most 256 characters, hashed. */
function string(v, path) {
  if (typeof v !== "string") throw new FieldError(path, `must be a string, got ${pyKind(v)}`);
  return encodeString(v, path);
}

/** encode_u64: an integer 0 ≤ v < 2^64, as a JSON integer or a canonical decimal string. */
function u64(v, path) {
  const message = "must be an integer 0 ≤ v < 2^64";
  let x;
  if (typeof v === "bigint") x = v;
  else if (typeof v === "string" && v.length <= 20 && DECIMAL_INT.test(v)) x = BigInt(v);
  else throw new FieldError(path, `${message}, got ${pyKind(v)}`);
  if (x < 0n || x >= U64) throw new FieldError(path, message);
  return x;
}

/** MeteredCorrection.from_wire: the units taken back (4, padded) and the four hashed texts. */
function encodeCorrection(obj, tariff, original, path = "correction") {
  if (!isObject(obj)) throw new FieldError(path, `must be an object, got ${pyKind(obj)}`);
  const unknown = Object.keys(obj).filter((k) => !CORRECTION_KEYS.includes(k)).sort();
  if (unknown.length) {
    throw new FieldError(`${path}.${unknown[0]}`, `unknown field(s) ${pyRepr(unknown)}: not covered by the hash`);
  }
  for (const k of CORRECTION_KEYS) {
    if (k !== "usage" && !Object.hasOwn(obj, k)) throw new FieldError(`${path}.${k}`, "is required");
  }
  const usage = Object.hasOwn(obj, "usage") ? obj.usage : null;
  let units;
  if (usage === null) {
    units = [...original];
  } else {
    if (!isObject(usage)) throw new FieldError(`${path}.usage`, `must be an object, got ${pyKind(usage)}`);
    for (const name of Object.keys(usage)) {
      if (!tariff.names.includes(name)) throw new FieldError(`${path}.usage.${name}`, "is not priced by the tariff");
    }
    units = tariff.names.map((name, d) => {
      const u = u64(Object.hasOwn(usage, name) ? usage[name] : 0n, `${path}.usage.${name}`);
      if (u > original[d]) throw new FieldError(`${path}.usage.${name}`, `${u} units is more than the corrected event's ${original[d]}`);
      return u;
    });
    while (units.length < 4) units.push(0n);
  }
  return {
    tenantId: string(obj.tenant_id, `${path}.tenant_id`),
    corrects: string(obj.corrects, `${path}.corrects`),
    correctionId: string(obj.correction_id, `${path}.correction_id`),
    reason: string(obj.reason, `${path}.reason`),
    units,
  };
}

/** The correction re-priced from the document's own parts (verify.correction._redo): its nine
 *  public signals, the state after it and the units it takes back per dimension. */
async function redo(doc) {
  const original = item(doc, "original");
  const bp = item(item(doc, "attestation"), "billing_proof");
  const meterJson = item(original, "meter_event");
  const tariffJson = item(original, "tariff_snapshot");
  const charge = item(original, "expected_charge_micros");
  const saltOriginal = parseFieldElement(item(original, "salt"), "original.salt");
  get(original, "bundle_digest");
  if (typeof charge !== "bigint") throw new PyError("original.expected_charge_micros: must be an integer");
  const dims = item(tariffJson, "dimensions");
  if (!isObject(dims)) throw new PyError(`'${pyKind(dims)}' object is not a mapping of dimensions`);
  const names = Object.keys(dims).sort();
  const beforeJson = item(item(item(doc, "billing"), "window"), "before");
  const before = stateFromJson(WindowStateJson(beforeJson, "billing.window.before"), names, "billing.window.before");
  const request = item(doc, "correction");
  const salt = parseFieldElement(item(bp, "salt"), "billing_proof.salt");
  const accountSalt = parseFieldElement(item(bp, "account_salt"), "billing_proof.account_salt");
  // the original's opening, read as an attest request (meter first, then tariff) and encoded
  const meterModel = MeteredMeterEvent(meterJson, "meter_event");
  const tariffModel = MeteredTariffSnapshot(tariffJson, "tariff_snapshot");
  const tariff = encodeMeteredTariff(tariffModel);
  const meter = encodeMeteredMeter(meterModel, tariff);
  const cor = encodeCorrection(request, tariff, meter.units);
  const [credit, after] = correctionTransition(tariff, cor.units, before);
  const H = await hasher();
  const k = meteredKeys(H, tariff, meter, accountSalt);
  const corrects = k.commitment(charge, saltOriginal);
  const u = cor.units;
  const signals = {
    commitment: H([CORRECTION.domainTag, cor.correctionId, cor.reason, pack(u[0], u[1], u[2]), pack(u[3], credit), corrects, salt]),
    credit,
    tariff_key: k.tariffKey,
    nullifier: H([meter.tenantId, meter.eventId, accountSalt, CORRECTION.domainTag]),
    tenant_key: k.tenantKey,
    prev_state_key: k.stateKey(before),
    state_key: k.stateKey(after),
    corrects,
    corrects_nullifier: k.nullifier,
  };
  const usage = Object.create(null);
  tariff.names.forEach((n, d) => (usage[n] = u[d]));
  return { signals, after, names: tariff.names, usage };
}

const recordOf = (doc) => Object.fromEntries(RECORD_KEYS.map((k) => [k, Object.hasOwn(doc, k) ? doc[k] : null]));
const domainOf = (version) => ({ name: "vbill", version });

/** The EIP-712 digest a correction's attester signs (bundle.correction.correction_digest). */
function correctionDigest(record, billingProof, s) {
  const contentHash = sha256(canonicalJson({ record, billing_proof: billingProof }));
  const version = record.correction_version;
  if (typeof version !== "string") throw new PyError("correction_version is not text");
  const structHash = keccak(concat(
    keccak(utf8(CORRECTION_TYPE)), keccak(utf8(version)),
    uint256(s.credit), uint256(s.commitment), uint256(s.nullifier), uint256(s.corrects),
    uint256(s.corrects_nullifier), uint256(s.prev_state_key), uint256(s.state_key),
    bytes32Hex(item(billingProof, "vkey_sha256")), contentHash,
  ));
  return eip712(domainOf(CORRECTION.version), structHash);
}

/** The EIP-712 digest of a void (bundle.correction.void_digest). */
function voidDigest(record) {
  const original = item(record, "original");
  const credit = item(item(record, "billing"), "credit_micros");
  if (typeof credit !== "bigint") throw new PyError("billing.credit_micros is not an integer");
  const structHash = keccak(concat(
    keccak(utf8(VOID_TYPE)), keccak(utf8(String(record.correction_version))),
    uint256(credit), uint256(pyInt(item(original, "commitment"))), uint256(pyInt(item(original, "nullifier"))),
    sha256(canonicalJson(record)),
  ));
  return eip712(domainOf(VOID.documentVersion), structHash);
}

const no = (reason) => ({ valid: false, reason });

/** `verification` (_signed_and_logged): the recomputed digest is the stated one, signed by a
 *  trusted attester, and the log receipt proves its inclusion. */
function signedAndLogged(doc, digest, trust) {
  const att = item(doc, "attestation");
  const stated = item(att, "bundle_digest");
  if (String(stated).toLowerCase() !== "0x" + hex(digest)) return no("attestation.bundle_digest does not match the record");
  const signer = recoverAddress(digest, item(att, "signature"));
  if (signer.toLowerCase() !== String(item(att, "attester")).toLowerCase()) return no("signature was not made by attestation.attester");
  const receipt = get(doc, "receipt");
  const signedAt = isObject(receipt) ? item(item(receipt, "tree_head"), "timestamp") : null;
  const status = trust.attesterStatus(signer, signedAt);
  if (status !== null) {
    const why = {
      revoked: "is revoked",
      unknown: "is not in the trusted set",
      retired: `is retired since ${status.cutOff} (ms); not logged before that`,
    }[status.kind];
    return no(`attester ${signer} ${why}`);
  }
  if (!isObject(receipt)) return no("receipt: missing");
  let parsed;
  try {
    parsed = Receipt(receipt, "receipt");
  } catch (e) {
    if (e instanceof FieldError) return no(`receipt: receipt is malformed: ${e.message}`);
    throw e;
  }
  const [ok, , why] = verifyReceipt(parsed, digest, trust.logSigners);
  return ok ? { valid: true } : no(`receipt: ${why}`);
}

async function correctionVerification(doc, trust) {
  const digest = correctionDigest(recordOf(doc), item(item(doc, "attestation"), "billing_proof"), (await redo(doc)).signals);
  return signedAndLogged(doc, digest, trust);
}

async function correctionBilling(doc) {
  const r = await redo(doc);
  const billing = item(doc, "billing");
  const credit = get(billing, "credit_micros");
  if (!pyEq(credit, r.signals.credit)) {
    return no(`billing.credit_micros: ${pyRepr(credit)} but the credit rule gives ${r.signals.credit} from the window state before`);
  }
  const window = item(billing, "window");
  if (!pyEq(get(window, "seq"), r.after.seq)) {
    return no(`billing.window.seq: ${pyRepr(get(window, "seq"))} but before.seq + 1 is ${r.after.seq}`);
  }
  if (!pyEq(get(window, "after"), stateToJson(r.after, r.names))) {
    return no("billing.window.after: not the state the correction leaves (before − units)");
  }
  if (!pyEq(get(item(doc, "correction"), "usage"), r.usage)) {
    return no("correction.usage: must name every dimension's units");
  }
  return { valid: true };
}

async function correctionBinding(doc, trust) {
  const base = { binding_version: CORRECTION.version, commitment_digest: null };
  const fail = (reason, digest = null) => ({ ...base, valid: false, reason, commitment_digest: digest });
  const bp = item(item(doc, "attestation"), "billing_proof");
  if (get(bp, "binding_version") !== CORRECTION.version) {
    return fail(`billing_proof.binding_version: ${pyRepr(get(bp, "binding_version"))} is not ${CORRECTION.version}`);
  }
  const s = (await redo(doc)).signals;
  const digest = s.commitment.toString();
  const stated = get(bp, "public_signals");
  const ours = CORRECTION.signals.map((n) => s[n]);
  if (!Array.isArray(stated) || stated.length !== ours.length) {
    return fail(`billing_proof.public_signals: expected ${ours.length} signals`, digest);
  }
  for (let i = 0; i < ours.length; i++) {
    parseFieldElement(stated[i], `billing_proof.public_signals[${i}]`);
    if (stated[i] !== ours[i].toString()) return fail(`billing_proof.public_signals[${i}] does not match the record`, digest);
  }
  const sha = get(bp, "vkey_sha256");
  if (typeof sha !== "string") throw new PyError(`'${sha === null ? "NoneType" : pyKind(sha)}' object has no attribute 'lower'`);
  const [vkey, , kind] = trust.vkey(sha);
  if (!vkey) {
    const why = kind === "revoked" ? "is revoked" : "is not in the trusted set";
    return fail(`billing_proof.vkey_sha256: verification key ${sha.slice(0, 16)}… ${why}`, digest);
  }
  const [ok] = await checkProof(vkey, ours, get(bp, "proof"));
  return ok ? { ...base, valid: true, commitment_digest: digest } : fail("Groth16 proof does not verify", digest);
}

/** The v1 charge and public signals recomputed from a void's opening of its original. */
async function voidOriginal(doc) {
  const o = item(doc, "original");
  const record = {
    meter_event: MeterEvent(item(o, "meter_event"), "meter_event"),
    tariff_snapshot: TariffSnapshot(item(o, "tariff_snapshot"), "tariff_snapshot"),
  };
  const enc = encodeRecord(record);
  const bp = {
    salt: parseFieldElement(item(o, "salt"), "original.salt").toString(),
    account_salt: parseFieldElement(item(o, "account_salt"), "original.account_salt").toString(),
  };
  return [enc.charge, await publicSignals(enc, bp)];
}

async function voidBilling(doc) {
  const [charge] = await voidOriginal(doc);
  const stated = item(item(doc, "original"), "expected_charge_micros");
  if (!pyEq(stated, charge)) return no(`original.expected_charge_micros: ${pyRepr(stated)} but the tariff gives ${charge}`);
  if (!pyEq(get(item(doc, "billing"), "credit_micros"), charge)) {
    return no(`billing.credit_micros: a void credits the original's charge, ${charge}`);
  }
  return { valid: true };
}

async function voidBinding(doc) {
  const [, s] = await voidOriginal(doc);
  const o = item(doc, "original");
  for (const name of ["commitment", "nullifier"]) {
    if (get(o, name) !== s[name].toString()) {
      return { valid: false, reason: `original.${name} is not what the original's opening gives`, binding_version: VOID.version, commitment_digest: null };
    }
  }
  return { valid: true, binding_version: VOID.version, commitment_digest: o.commitment };
}

async function guard(fn, fallback) {
  try {
    return await fn();
  } catch (e) {
    return fallback(e?.message || e?.constructor?.name || String(e));
  }
}

/** Judge a correction or void document (parsed JSON); never throws. Python gives a correction
 *  no warnings, so neither does this. */
export async function verifyCorrection(doc, trust) {
  const kind = correctionKind(doc);
  const binding = kind === VOID ? VOID.version : CORRECTION.version;
  const steps = kind === VOID
    ? [() => signedAndLogged(doc, voidDigest(recordOf(doc)), trust), () => voidBilling(doc), () => voidBinding(doc)]
    : [() => correctionVerification(doc, trust), () => correctionBilling(doc), () => correctionBinding(doc, trust)];
  const verification = await guard(steps[0], no);
  const billing_check = await guard(steps[1], no);
  const incircuit_binding_verification = await guard(
    steps[2],
    (r) => ({ valid: false, reason: r, binding_version: binding, commitment_digest: null }),
  );
  return {
    verification,
    billing_check,
    incircuit_binding_verification,
    valid: verification.valid && billing_check.valid && incircuit_binding_verification.valid,
    warnings: [],
  };
}
