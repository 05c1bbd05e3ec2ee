// Transparency-log receipts: RFC 9162 inclusion proofs under a tree head signed with an
// Ethereum key (EIP-191 over a fixed byte layout). Fails closed: anything malformed is false.

import { sha256, utf8 } from "./canonical.js";
import { concat, fromHex, personalHash, recoverAddress } from "./eth.js";

const STH_DOMAIN = utf8("vbill-sth-v1");
const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
export const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

function u64(x) {
  if (x < 0n || x >= 1n << 64n) throw new Error("out of range");
  return fromHex(x.toString(16).padStart(16, "0"));
}

/** RFC 9162 §2.1.3.2, literally. */
export function verifyInclusion(leaf, index, treeSize, proof, root) {
  if (!(0n <= index && index < treeSize)) return false;
  if ([leaf, root, ...proof].some((h) => h.length !== 32)) return false;
  let fn = index;
  let sn = treeSize - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return false;
    if (fn & 1n || fn === sn) {
      r = nodeHash(p, r);
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && eq(r, root);
}

function treeHeadOk(sth, trustedSigners) {
  try {
    if (!trustedSigners.has(sth.signer.toLowerCase())) return false;
    const root = fromHex(sth.root_hash);
    if (root.length !== 32) return false;
    const message = concat(STH_DOMAIN, u64(sth.tree_size), u64(sth.timestamp), root);
    return recoverAddress(personalHash(message), sth.signature).toLowerCase() === sth.signer.toLowerCase();
  } catch {
    return false;
  }
}

/** [ok, reason in plain words, reason as vbill.ledger.translog.verify_receipt words it] for a
 *  receipt of `digest` (32 bytes). */
export function verifyReceipt(receipt, digest, trustedSigners) {
  let proof, statedLeaf, root;
  try {
    proof = receipt.inclusion_proof.map(fromHex);
    statedLeaf = fromHex(receipt.leaf_hash);
    root = fromHex(receipt.tree_head.root_hash);
  } catch (e) {
    return [false, `the log receipt is malformed (${e.message})`, `receipt is malformed: ${e.message}`];
  }
  const leaf = leafHash(digest);
  if (!eq(statedLeaf, leaf)) {
    return [false, "the log receipt is for a different bundle (its leaf is not this bundle's)", "receipt leaf_hash is not the leaf hash of this bundle's digest"];
  }
  if (receipt.tree_size !== receipt.tree_head.tree_size) {
    return [false, "the log receipt's tree size differs from its signed tree head", "receipt tree_size differs from the signed tree head"];
  }
  if (!treeHeadOk(receipt.tree_head, trustedSigners)) {
    return [false, "the log's tree head is not signed by a log signer the trust document names", "signed tree head is not signed by a trusted log key"];
  }
  if (!verifyInclusion(leaf, receipt.leaf_index, receipt.tree_head.tree_size, proof, root)) {
    return [false, "the inclusion proof does not lead to the log's signed root: this bundle is not shown to be in the log", "inclusion proof does not lead to the signed root"];
  }
  return [true, null, "ok"];
}
