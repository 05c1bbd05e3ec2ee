// The circuit's public signals recomputed from a record's own fields and the bundle's salts,
// with circomlibjs's Poseidon (the same constants as the circuit): never read from the bundle.

import buildPoseidonOpt from "circomlibjs/src/poseidon_opt.js";
import { LINEAR } from "./bindings.js";
import { parseFieldElement } from "./encoding.js";

let poseidonPromise = null;
export const loadPoseidon = () => (poseidonPromise ??= buildPoseidonOpt());

export const SIGNAL_NAMES = LINEAR.signals;

/** {commitment, charge, tariff_key, nullifier, tenant_key} as BigInts, in circuit order. */
export async function publicSignals(encoded, billingProof) {
  const salt = parseFieldElement(billingProof.salt, "billing_proof.salt");
  const accountSalt = parseFieldElement(billingProof.account_salt, "billing_proof.account_salt");
  const poseidon = await loadPoseidon();
  const H = (xs) => poseidon.F.toObject(poseidon(xs));
  const { meter, tariff, charge } = encoded;
  const meterHash = H(meter);
  const tariffHash = H(tariff);
  const tenantId = meter[2];
  const eventId = meter[0];
  return {
    commitment: H([LINEAR.domainTag, meterHash, tariffHash, charge, salt, 0n, 0n, 0n]),
    charge,
    tariff_key: H([tariffHash, accountSalt]),
    nullifier: H([tenantId, eventId, accountSalt]),
    tenant_key: H([tenantId, accountSalt]),
  };
}

export const signalList = (s) => SIGNAL_NAMES.map((n) => s[n]);
