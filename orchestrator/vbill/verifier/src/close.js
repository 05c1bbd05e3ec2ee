// Close records (docs/protocol-v2.md §14), judged as vbill.billing.close_record judges them: the
// body's shape, its EIP-712 digest (domain close-1) over the canonical JSON's SHA-256, the
// attester's signature, the trust in that attester, and the record's log receipt.

import { canonicalJson, hex, sha256, utf8 } from "./canonical.js";
import { R } from "./encoding.js";
import { concat, eip712, keccak, recoverAddress, uint256 } from "./eth.js";
import { isObject } from "./json.js";
import { Receipt } from "./models.js";
import { verifyReceipt } from "./translog.js";

export const CLOSE_VERSION = "vbill-close-1";
const SCHEME = "eip712-close-1";
const CLOSE_TYPE =
  "WindowClose(string tenantId,string billingWindowId,string tariffId,uint256 lastSeq," +
  "uint256 lastStateKey,uint256 totalMicros,bytes32 contentHash)";
const BODY_KEYS = [
  "close_version", "tenant_id", "billing_window_id", "tariff_id", "currency", "last_seq",
  "last_event_id", "last_state_key", "total_micros", "amount", "totals_by_dimension",
  "closed_at", "closed_by",
];
const DEC = /^(0|[1-9][0-9]{0,77})$/;
const TIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/;
const U64 = 1n << 64n;

const decimalBelow = (v, limit) => typeof v === "string" && DEC.test(v) && BigInt(v) < limit;

function shapeProblem(r) {
  if (!isObject(r)) return "the close record is not a JSON object";
  if (r.close_version !== CLOSE_VERSION) return `the close record's close_version is not "${CLOSE_VERSION}"`;
  for (const k of BODY_KEYS) if (!Object.hasOwn(r, k)) return `the close record has no ${k}`;
  for (const k of Object.keys(r)) {
    if (!BODY_KEYS.includes(k) && k !== "attestation" && k !== "receipt") return `the close record has an unknown member ${k}`;
  }
  for (const k of ["tenant_id", "billing_window_id", "tariff_id", "currency", "last_event_id"]) {
    if (typeof r[k] !== "string") return `the close record's ${k} is not text`;
  }
  if (typeof r.last_seq !== "bigint" || r.last_seq < 1n || r.last_seq >= U64) return "the close record's last_seq is not a whole number from 1";
  if (!decimalBelow(r.last_state_key, R)) return "the close record's last_state_key is not a field element";
  if (!decimalBelow(r.total_micros, U64)) return "the close record's total_micros is not a decimal amount";
  if (!decimalBelow(r.amount, 1n << 130n)) return "the close record's amount is not a decimal amount";
  const t = r.totals_by_dimension;
  if (!isObject(t) || Object.keys(t).length === 0) return "the close record's totals_by_dimension is not a list of units per dimension";
  for (const v of Object.values(t)) if (!decimalBelow(v, U64)) return "the close record's totals_by_dimension has a value that is not a decimal count";
  if (typeof r.closed_at !== "string" || !TIME.test(r.closed_at)) return "the close record's closed_at is not an RFC 3339 time";
  if (r.closed_by !== "operator" && r.closed_by !== "grace") return "the close record's closed_by is neither operator nor grace";
  return null;
}

/** The EIP-712 digest of a close record's body (vbill.billing.close_record.close_digest). */
export function closeDigest(r) {
  const body = Object.fromEntries(BODY_KEYS.map((k) => [k, r[k]]));
  const structHash = keccak(
    concat(
      keccak(utf8(CLOSE_TYPE)),
      keccak(utf8(r.tenant_id)),
      keccak(utf8(r.billing_window_id)),
      keccak(utf8(r.tariff_id)),
      uint256(r.last_seq),
      uint256(BigInt(r.last_state_key)),
      uint256(BigInt(r.total_micros)),
      sha256(canonicalJson(body)),
    ),
  );
  return eip712({ name: "vbill", version: "close-1" }, structHash);
}

/** Why a close record does not hold (null: it holds), in plain words. */
export function closeProblem(r, trust) {
  const shape = shapeProblem(r);
  if (shape) return shape;
  const att = r.attestation;
  if (!isObject(att)) return "the close record has no attestation";
  if (att.scheme !== SCHEME) return `the close record's signature scheme is not ${SCHEME}`;
  const digest = closeDigest(r);
  if (att.digest !== "0x" + hex(digest)) return "the close record was changed after it was signed: its digest no longer matches";
  if (typeof att.attester !== "string" || typeof att.signature !== "string") return "the close record's attester and signature are not text";
  let signer;
  try {
    signer = recoverAddress(digest, att.signature);
  } catch (e) {
    return `the close record's signature does not recover to any key (${e.message})`;
  }
  if (signer.toLowerCase() !== att.attester.toLowerCase()) return "the close record's signature is not its attester's";
  if (!isObject(r.receipt)) return "the close record has no log receipt";
  const head = r.receipt.tree_head;
  const signedAt = isObject(head) && typeof head.timestamp === "bigint" ? head.timestamp : null;
  const why = trust.attesterProblem(att.attester, signedAt);
  if (why) return `the close record's attester is not trusted: ${why}`;
  let receipt;
  try {
    receipt = Receipt(r.receipt, "close.receipt");
  } catch (e) {
    return `the close record's log receipt is malformed (${e.message})`;
  }
  const [ok, reason] = verifyReceipt(receipt, digest, trust.logSigners);
  return ok ? null : `the close record's log receipt does not hold: ${reason}`;
}

