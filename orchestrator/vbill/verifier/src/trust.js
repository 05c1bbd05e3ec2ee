// The pinned trust document: which verification keys (by SHA-256, per binding), attesters and
// log signers to trust, and what is revoked. It is checked as the Python package checks it
// (vbill.verify.trust_document): well formed, every key hashing to its stated SHA-256, signed
// (EIP-191 personal_sign over its canonical JSON without "signature") by its issuer, who is
// one of its own unrevoked, unretired attesters. Retired (rotated-out) attesters keep what they
// signed before their cut-off, as vbill.verify.trust.TrustSet.attester_ok judges it.

import { canonicalJson, sha256Hex, utf8 } from "./canonical.js";
import { personalHash, recoverAddress } from "./eth.js";
import { isObject } from "./json.js";

export class TrustError extends Error {}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const ISSUED_AT = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const SIGNATURE = /^0x[0-9a-fA-F]{130}$/;

function need(ok, field, message) {
  if (!ok) throw new TrustError(`the trust document's ${field} ${message}`);
}
const strings = (v, field) => {
  need(Array.isArray(v) && v.every((x) => typeof x === "string"), field, "must be a list of text");
  return v;
};
const onlyKeys = (obj, keys, field) => {
  for (const k of Object.keys(obj)) need(keys.includes(k), `${field}.${k}`, "is not an allowed field");
};

const isoTime = (ms) => {
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? `${ms} ms` : d.toISOString();
};

/** A checked trust document → the trust set the verdicts use. Throws TrustError. */
export function trustFromDocument(doc) {
  need(isObject(doc), "content", "must be a JSON object");
  const keys = ["trust_version", "issued_at", "issuer", "bindings", "attesters", "log_signers",
    "revocation_url", "log_head_url", "revoked", "deployments", "signature"];
  onlyKeys(doc, [...keys, "retired_attesters"], "field");
  for (const k of keys) need(Object.hasOwn(doc, k), k, "is missing");
  need(doc.trust_version === 1n, "trust_version", "must be 1");
  need(typeof doc.issued_at === "string" && ISSUED_AT.test(doc.issued_at), "issued_at", "must be a UTC time ending in Z");
  need(typeof doc.issuer === "string" && ADDRESS.test(doc.issuer), "issuer", "must be an Ethereum address");
  need(typeof doc.signature === "string" && SIGNATURE.test(doc.signature), "signature", "must be a 65-byte hex signature");
  for (const k of ["revocation_url", "log_head_url"]) need(typeof doc[k] === "string", k, "must be text");
  const attesters = strings(doc.attesters, "attesters");
  const logSigners = strings(doc.log_signers, "log_signers");
  need(isObject(doc.revoked), "revoked", "must be an object");
  onlyKeys(doc.revoked, ["attesters", "vkeys"], "revoked");
  const revokedAttesters = strings(doc.revoked.attesters ?? [], "revoked.attesters");
  const revokedVkeys = strings(doc.revoked.vkeys ?? [], "revoked.vkeys");
  const retiredIn = Object.hasOwn(doc, "retired_attesters") ? doc.retired_attesters : Object.create(null);
  need(isObject(retiredIn), "retired_attesters", "must be an object");
  const retired = new Map(); // lower-case address -> retired_at (ms, BigInt)
  for (const [a, at] of Object.entries(retiredIn)) {
    need(ADDRESS.test(a), `retired_attesters.${a}`, "is not an Ethereum address");
    need(typeof at === "bigint" && at >= 0n, `retired_attesters.${a}`, "must be a whole number of milliseconds");
    retired.set(a.toLowerCase(), at);
  }
  need(isObject(doc.deployments), "deployments", "must be an object");
  for (const [name, d] of Object.entries(doc.deployments)) {
    const f = `deployments.${name}`;
    need(isObject(d), f, "must be an object");
    onlyKeys(d, ["settlement", "verifier", "chain_id"], f);
    need(typeof d.settlement === "string" && ADDRESS.test(d.settlement), `${f}.settlement`, "must be an address");
    need(typeof d.verifier === "string" && ADDRESS.test(d.verifier), `${f}.verifier`, "must be an address");
    need(typeof d.chain_id === "bigint", `${f}.chain_id`, "must be a whole number");
  }
  need(isObject(doc.bindings), "bindings", "must be an object");
  const vkeys = new Map();
  const bindings = [];
  for (const [version, b] of Object.entries(doc.bindings)) {
    const f = `bindings.${version}`;
    need(isObject(b), f, "must be an object");
    onlyKeys(b, ["vkey_sha256", "ceremony", "vkey_json"], f);
    need(typeof b.vkey_sha256 === "string" && SHA256.test(b.vkey_sha256), `${f}.vkey_sha256`, "must be a SHA-256 in lower-case hex");
    need(typeof b.ceremony === "string", `${f}.ceremony`, "must be text");
    need(typeof b.vkey_json === "string", `${f}.vkey_json`, "must be text");
    need(sha256Hex(utf8(b.vkey_json)) === b.vkey_sha256, `${f}.vkey_json`, "does not hash to its vkey_sha256: the key was swapped");
    let vkey;
    try {
      vkey = JSON.parse(b.vkey_json); // a snarkjs key holds numbers as decimal text
    } catch {
      vkey = null;
    }
    need(isObject(vkey), `${f}.vkey_json`, "is not a JSON object");
    vkeys.set(b.vkey_sha256, vkey);
    bindings.push({ version, vkey_sha256: b.vkey_sha256, ceremony: b.ceremony });
  }
  const body = Object.create(null);
  for (const k of Object.keys(doc)) if (k !== "signature") body[k] = doc[k];
  let signer;
  try {
    signer = recoverAddress(personalHash(canonicalJson(body)), doc.signature);
  } catch {
    throw new TrustError("the trust document's signature is malformed");
  }
  const lower = (xs) => new Set(xs.map((x) => x.toLowerCase()));
  const revoked = lower(revokedAttesters);
  if (signer.toLowerCase() !== doc.issuer.toLowerCase()) {
    throw new TrustError(`the trust document is not signed by its issuer ${doc.issuer} (it was signed by ${signer}): it was altered or forged`);
  }
  need(lower(attesters).has(doc.issuer.toLowerCase()), "issuer", "is not one of the document's own attesters");
  need(!revoked.has(doc.issuer.toLowerCase()), "issuer", "is revoked by the document itself");
  need(!retired.has(doc.issuer.toLowerCase()), "issuer", "is retired by the document itself");
  // A retired key is trusted (as attester and log signer) for what it signed before its cut-off.
  const trusted = new Set([...lower(attesters), ...retired.keys()]);
  const signers = new Set([...trusted, ...lower(logSigners)].filter((a) => !revoked.has(a)));
  const revokedKeys = new Set(revokedVkeys.map((v) => v.toLowerCase()));
  return {
    issuer: doc.issuer,
    issuedAt: doc.issued_at,
    bindings,
    attesters,
    logSignerList: logSigners,
    revocationUrl: doc.revocation_url,
    logHeadUrl: doc.log_head_url,
    logSigners: signers,
    revokedAttesters: revokedAttesters,
    revokedVkeys: revokedVkeys,
    retired,
    insecureVkeys: new Set(bindings.filter((b) => b.ceremony === "dev-insecure").map((b) => b.vkey_sha256)),
    /** Why `address` is not trusted for a bundle logged at `signedAt` (ms, the receipt's tree
     *  head; null without a receipt): {kind: "revoked" | "unknown" | "retired", cutOff}, or
     *  null (TrustSet.attester_ok's order). */
    attesterStatus(address, signedAt) {
      const a = address.toLowerCase();
      if (revoked.has(a)) return { kind: "revoked" };
      if (!trusted.has(a)) return { kind: "unknown" };
      const cutOff = retired.get(a);
      if (cutOff !== undefined && (typeof signedAt !== "bigint" || signedAt >= cutOff)) return { kind: "retired", cutOff };
      return null;
    },
    /** attesterStatus in plain words (null: trusted). */
    attesterProblem(address, signedAt) {
      const s = this.attesterStatus(address, signedAt);
      if (s === null) return null;
      if (s.kind === "revoked") return `the attester ${address} that signed this bundle has been revoked by the provider`;
      if (s.kind === "unknown") return `the bundle was signed by ${address}, which is not an attester the trust document names`;
      const when = signedAt === null || signedAt === undefined ? "it has no log receipt from before then" : `its log receipt is from ${isoTime(signedAt)}, after that`;
      return `the attester ${address} was retired by the provider at ${isoTime(s.cutOff)} (key rotation); ${when}`;
    },
    /** [key, null] or [null, why in plain words, "revoked" | "unknown"] (TrustSet.vkey). */
    vkey(sha) {
      const short = String(sha).slice(0, 16);
      if (revokedKeys.has(String(sha).toLowerCase())) return [null, `the proof's verification key ${short}… has been revoked`, "revoked"];
      const key = vkeys.get(sha);
      if (!key) return [null, `the proof names a verification key ${short}… that the trust document does not list`, "unknown"];
      return [key, null];
    },
  };
}
