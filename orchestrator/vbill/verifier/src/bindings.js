// The page's one place for bindings (as vbill.bindings is the Python package's): each binding's
// version, its commitment's domain tag and public signals, and which binding judges a record or
// a document. Every other module asks this one; none compares versions.
//
// Versions and public signals come from circuits/circuits.json, the file vbill.bindings.registry
// is built from (build.mjs inlines it), by circuit key:
// - a record whose tariff is of class "metered" is metered_binding's (docs/protocol-v2.md), any
//   other billing_binding's (docs/protocol.md);
// - a correction document ("vbill-correction-1") is correction_binding's, a void
//   ("vbill-void-1") rests on its original's billing_binding opening
//   (docs/protocol-corrections.md).

import circuits from "../../../../circuits/circuits.json" with { type: "json" };
import { hashString } from "./encoding.js";
import { isObject } from "./json.js";

const binding = (key) => {
  const { binding_version: version, pubs } = circuits[key];
  return Object.freeze({ version, domainTag: hashString(version), signals: [...pubs] });
};

/** usage_linear tariffs, the bundles of the first release. */
export const LINEAR = binding("billing_binding");

/** Metered tariffs, a proven window state. */
export const METERED = binding("metered_binding");

/** A correction of a metered event, priced backwards from its window's state. */
export const CORRECTION = Object.freeze({ ...binding("correction_binding"), documentVersion: "vbill-correction-1" });

/** A void of a billing_binding event: a signed, logged record, no proof of its own. */
export const VOID = Object.freeze({ version: LINEAR.version, documentVersion: "vbill-void-1" });

/** The binding of an event's record (vbill.bindings.registry.event_binding). */
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
