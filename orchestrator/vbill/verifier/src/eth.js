// Ethereum signatures as the Python side (eth_account) reads them: EIP-712 typed-data digests,
// EIP-191 personal messages, and recovery of the signing address from a 65-byte signature.

import { keccak_256 } from "@noble/hashes/sha3.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hex, utf8 } from "./canonical.js";

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
export { concat };

/** Python's bytes.fromhex after removeprefix("0x"): pairs of hex digits, whitespace between. */
export function fromHex(s) {
  if (typeof s !== "string") throw new Error("expected hex text");
  if (s.startsWith("0x")) s = s.slice(2);
  const out = [];
  let i = 0;
  while (i < s.length) {
    if (" \t\n\r\v\f".includes(s[i])) {
      i++;
      continue;
    }
    const pair = s.slice(i, i + 2);
    if (!/^[0-9a-fA-F]{2}$/.test(pair)) throw new Error(`not hex at position ${i}`);
    out.push(parseInt(pair, 16));
    i += 2;
  }
  return Uint8Array.from(out);
}

export const keccak = (bytes) => keccak_256(bytes);

export function uint256(x) {
  if (typeof x !== "bigint" || x < 0n || x >= 1n << 256n) throw new Error("not a uint256");
  return fromHex(x.toString(16).padStart(64, "0"));
}

function bytes32(b) {
  if (b.length !== 32) throw new Error("not 32 bytes");
  return b;
}

const DOMAIN_TYPE = "EIP712Domain(string name,string version)";
const BUNDLE_MEMBERS =
  "string billingVersion,string profileId,bytes32 fingerprint,uint256 chargeMicros," +
  "uint256 commitment,uint256 nullifier,bytes32 vkeyHash,bytes32 contentHash";
const BUNDLE_TYPE = `BillingBundle(${BUNDLE_MEMBERS})`;
// Binding v2 (docs/protocol-v2.md §8): v1's members, then both window state keys.
const METERED_TYPE = `MeteredBillingBundle(${BUNDLE_MEMBERS},uint256 prevStateKey,uint256 stateKey)`;

/** keccak(0x1901 || domainSeparator({name, version}) || structHash): EIP-712's digest. */
export function eip712(domain, structHash) {
  const domainSeparator = keccak(
    concat(keccak(utf8(DOMAIN_TYPE)), keccak(utf8(domain.name)), keccak(utf8(domain.version))),
  );
  return keccak(concat(Uint8Array.of(0x19, 0x01), domainSeparator, structHash));
}

/** The EIP-712 digest of a BillingBundle message under the domain {name, version}, or of a
 *  MeteredBillingBundle when the message carries state keys. */
export function typedDigest(domain, m) {
  const metered = m.stateKey !== undefined;
  const structHash = keccak(
    concat(
      keccak(utf8(metered ? METERED_TYPE : BUNDLE_TYPE)),
      keccak(utf8(m.billingVersion)),
      keccak(utf8(m.profileId)),
      bytes32(m.fingerprint),
      uint256(m.chargeMicros),
      uint256(m.commitment),
      uint256(m.nullifier),
      bytes32(m.vkeyHash),
      bytes32(m.contentHash),
      ...(metered ? [uint256(m.prevStateKey), uint256(m.stateKey)] : []),
    ),
  );
  return eip712(domain, structHash);
}

const USD_RATE_TYPE = "UsdRate(bytes32 bundleDigest,string rate,string source,string time)";

/** The EIP-712 digest of a USD rate snapshot bound to one bundle (vbill.bundle.usage's
 *  snapshot_digest, domain usd-rate-1, docs/protocol-v2.md §12). */
export function usdRateDigest(bundleDigest, rate, source, time) {
  const structHash = keccak(
    concat(keccak(utf8(USD_RATE_TYPE)), bytes32(bundleDigest), keccak(utf8(rate)), keccak(utf8(source)), keccak(utf8(time))),
  );
  return eip712({ name: "vbill", version: "usd-rate-1" }, structHash);
}

/** EIP-191 version E ("personal_sign") hash of a byte message. */
export function personalHash(message) {
  return keccak(concat(utf8(`\x19Ethereum Signed Message:\n${message.length}`), message));
}

function checksum(addressHex) {
  const h = hex(keccak(utf8(addressHex)));
  return "0x" + [...addressHex].map((c, i) => (parseInt(h[i], 16) >= 8 ? c.toUpperCase() : c)).join("");
}

/** The address that made `signature` (hex, 65 bytes r || s || v) over a 32-byte hash. */
export function recoverAddress(hash, signature) {
  const sig = fromHex(signature);
  if (sig.length !== 65) throw new Error("a signature must be 65 bytes");
  const v = sig[64];
  let bit;
  if (v <= 1) bit = v;
  else if (v === 27 || v === 28) bit = v - 27;
  else if (v >= 35) bit = (v - 35) % 2;
  else throw new Error(`signature v ${v} is invalid`);
  const point = secp256k1.Signature.fromBytes(sig.slice(0, 64), "compact")
    .addRecoveryBit(bit)
    .recoverPublicKey(hash);
  const pub = point.toBytes(false).slice(1);
  return checksum(hex(keccak(pub).slice(12)));
}
