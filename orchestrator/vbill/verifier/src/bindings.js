// The page's one place for binding versions (as vbill.bindings is the Python package's): what
// each binding is called, its commitment's domain tag and public signals, and which binding
// judges a record or a document. Every other module asks this one; none compares versions.
//
// - a record whose tariff is of class "metered" is binding v2's (docs/protocol-v2.md), any other
//   binding v1's (docs/protocol.md);
// - a correction document ("vbill-correction-1") is binding v2c's, a void ("vbill-void-1") rests
//   on its original's binding v1 opening (docs/protocol-corrections.md).

import { hashString } from "./encoding.js";
import { isObject } from "./json.js";

const BINDING_V1 = "bn128-poseidon8-v1";
const BINDING_V2 = "bn128-poseidon8-v2";
const BINDING_V2C = "bn128-poseidon8-v2c";

const binding = (version, signals) => Object.freeze({ version, domainTag: hashString(version), signals });

/** Binding v1: usage_linear tariffs, the bundles of the first release. */
export const LINEAR = binding(BINDING_V1, ["commitment", "charge", "tariff_key", "nullifier", "tenant_key"]);

/** Binding v2: metered tariffs, a proven window state. */
export const METERED = binding(BINDING_V2, [
  "commitment", "charge", "tariff_key", "nullifier", "tenant_key", "prev_state_key", "state_key",
]);

/** Binding v2c: a correction of a metered event, priced backwards from its window's state. */
export const CORRECTION = Object.freeze({
  ...binding(BINDING_V2C, [
    "commitment", "credit", "tariff_key", "nullifier", "tenant_key", "prev_state_key", "state_key",
    "corrects", "corrects_nullifier",
  ]),
  documentVersion: "vbill-correction-1",
});

/** A void of a binding v1 event: a signed, logged record, no proof of its own. */
export const VOID = Object.freeze({ version: BINDING_V1, documentVersion: "vbill-void-1" });

/** The binding of an event's record (models.is_metered). */
export const recordBinding = (record) =>
  isObject(record) && isObject(record.tariff_snapshot) && record.tariff_snapshot.tariff_class === "metered"
    ? METERED
    : LINEAR;

/** CORRECTION or VOID for a correction document (is_correction_document), else null. */
export function correctionKind(doc) {
  if (!isObject(doc)) return null;
  if (doc.correction_version === CORRECTION.documentVersion) return CORRECTION;
  if (doc.correction_version === VOID.documentVersion) return VOID;
  return null;
}
