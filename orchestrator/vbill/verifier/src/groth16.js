// The Groth16 check: the proof is parsed as strictly as the Python reference does (canonical
// decimal coordinates below p, affine z = 1, points on their curves), then snarkjs's own
// verifier (its wasm pairing) decides, under the trusted key and the recomputed signals.

import { curves, groth16 } from "snarkjs";
import { P } from "./encoding.js";
import { isObject } from "./json.js";

class ProofError extends Error {}

const B1 = 3n;
const mod = (x) => ((x % P) + P) % P;
// Fp2 = Fp[u]/(u^2 + 1); the twist's b = 3 / (9 + u).
const f2mul = ([a, b], [c, d]) => [mod(a * c - b * d), mod(a * d + b * c)];
const f2add = ([a, b], [c, d]) => [mod(a + c), mod(b + d)];
const B2 = [
  19485874751759354771024239261021720505790618469301721065564631296452457478373n,
  266929791119991161246907387137283842545076965332900288569378510910307636690n,
];

function coord(v, what) {
  if (typeof v !== "string" || !/^(0|[1-9][0-9]*)$/.test(v)) {
    throw new ProofError(`${what} is not a canonical decimal number`);
  }
  const x = BigInt(v);
  if (x >= P) throw new ProofError(`${what} is not below the field modulus`);
  return x;
}

function g1(c, what) {
  if (!Array.isArray(c) || c.length !== 3) throw new ProofError(`${what} is not a point [x, y, z]`);
  const [x, y, z] = c.map((v, i) => coord(v, `${what}[${i}]`));
  if (z !== 1n) throw new ProofError(`${what} is not in affine form (z = 1)`);
  if (mod(y * y) !== mod(x * x * x + B1)) throw new ProofError(`${what} is not on the curve`);
}

function g2(c, what) {
  if (!Array.isArray(c) || c.length !== 3) throw new ProofError(`${what} is not a point`);
  const parts = c.map((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2) throw new ProofError(`${what}[${i}] is not a pair`);
    return pair.map((v, j) => coord(v, `${what}[${i}][${j}]`));
  });
  if (parts[2][0] !== 1n || parts[2][1] !== 0n) throw new ProofError(`${what} is not in affine form`);
  const [x, y] = parts;
  if (f2mul(y, y).some((v, i) => v !== f2add(f2mul(f2mul(x, x), x), B2)[i])) {
    throw new ProofError(`${what} is not on the twist`);
  }
}

/** Throws ProofError (plain words) if the proof JSON is malformed. */
export function parseProof(proof) {
  if (!isObject(proof)) throw new ProofError("the proof is not an object");
  const protocol = "protocol" in proof ? proof.protocol : "groth16";
  const curve = "curve" in proof ? proof.curve : "bn128";
  if (protocol !== "groth16" || curve !== "bn128") throw new ProofError("the proof is not a Groth16 BN254 proof");
  g1(proof.pi_a, "proof.pi_a");
  g2(proof.pi_b, "proof.pi_b");
  g1(proof.pi_c, "proof.pi_c");
}

const plain = (v) => (Array.isArray(v) ? v.map(plain) : v);

/** [ok, reason]: snarkjs.groth16.verify under `vkey` (parsed JSON) for BigInt signals. */
export async function checkProof(vkey, signals, proof) {
  try {
    parseProof(proof);
  } catch (e) {
    if (e instanceof ProofError) return [false, `the proof is malformed: ${e.message}`];
    throw e;
  }
  if (!Array.isArray(vkey.IC) || vkey.IC.length !== signals.length + 1) {
    return [false, `the verification key is for ${Array.isArray(vkey.IC) ? vkey.IC.length - 1 : "no"} public signals, not this proof's ${signals.length}: it is another circuit's key`];
  }
  const points = { pi_a: plain(proof.pi_a), pi_b: plain(proof.pi_b), pi_c: plain(proof.pi_c), protocol: "groth16", curve: "bn128" };
  await warmCurve();
  const ok = await groth16.verify(vkey, signals.map(String), points);
  return ok ? [true, null] : [false, "the zero-knowledge proof does not verify for this record: the proved charge is not bound to these fields"];
}

let curvePromise = null;
/** Build snarkjs's BN254 curve (wasm and its workers) once; verification waits for it. */
export const warmCurve = () => (curvePromise ??= curves.getCurveFromName("bn128"));
