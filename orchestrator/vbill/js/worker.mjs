// Long-lived snarkjs worker: keeps the circuit wasm and proving key in memory and answers
// JSON-lines requests on stdin, so a proof costs the MSMs and FFTs, not node start-up and
// file parsing. Spawned and owned by vbill/zk/prover.py; one worker per core.
//
// Request:  {"id": 1, "op": "prove", "input": {...decimal strings...}}
//           {"id": 2, "op": "verify", "signals": [...], "proof": {...}}
//           {"id": 3, "op": "witness", "input": {...}}      (full witness, for tests)
//           {"id": 4, "op": "wtns", "input": {...}}         (.wtns file bytes, base64)
// Response: {"id": 1, "ok": true, "result": ...} or {"id": 1, "ok": false, "error": "..."}
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";

const [wasmPath, zkeyPath, vkeyPath, rootDir] = process.argv.slice(2);
const require = createRequire(`${rootDir}/package.json`);
const snarkjs = await import(require.resolve("snarkjs"));

const fromSnarkjs = { paths: [require.resolve("snarkjs")] };
const { WitnessCalculatorBuilder } = await import(require.resolve("circom_runtime", fromSnarkjs));
// One compiled witness calculator for the worker's lifetime (snarkjs's wtns.calculate would
// compile the circuit's wasm again on every call).
const calculator = await WitnessCalculatorBuilder(new Uint8Array(readFileSync(wasmPath)));
const zkey = zkeyPath && zkeyPath !== "-" ? new Uint8Array(readFileSync(zkeyPath)) : null;
const vkey = vkeyPath && vkeyPath !== "-" ? JSON.parse(readFileSync(vkeyPath, "utf8")) : null;
// ffjavascript rebuilds its wasm curve on every call in singleThread mode (seconds per proof).
// Build one single-threaded curve here and install it as the cached curve, so every prove and
// verify reuses it; parallelism comes from running one worker per core instead.
const ffjavascript = await import(require.resolve("ffjavascript", fromSnarkjs));
globalThis.curve_bn128 = await ffjavascript.buildBn128(true);

async function witness(input) {
  const data = await calculator.calculateWTNSBin(ffjavascript.utils.unstringifyBigInts(input));
  return { type: "mem", data };
}

const ops = {
  async prove({ input }) {
    if (!zkey) throw new Error("worker started without a proving key");
    const wtns = await witness(input);
    // A fresh mem descriptor each time: fastfile keeps a read position on the object.
    const { proof, publicSignals } = await snarkjs.groth16.prove(
      { type: "mem", data: zkey }, wtns);
    return { proof, public_signals: publicSignals };
  },
  async verify({ signals, proof, vkey: key }) {
    const k = key ?? vkey;
    if (!k) throw new Error("no verification key given");
    if (!inG2Subgroup(proof.pi_b)) return false;
    return await snarkjs.groth16.verify(k, signals, proof);
  },
  async verifyBatch({ vkey: key, items }) {
    // Random linear combination: one multi-pairing for many proofs (see groth16.py for the
    // equation); r_i are fresh 128-bit secrets, so a prover cannot cancel a bad proof.
    const k = key ?? vkey;
    if (!k) throw new Error("no verification key given");
    return await batchVerify(k, items);
  },
  async wtns({ input }) {
    // The .wtns file bytes, base64: the native prover (orchestrator/native_prover.py) reads them.
    const wtns = await witness(input);
    return Buffer.from(wtns.data.buffer, wtns.data.byteOffset, wtns.data.byteLength)
      .toString("base64");
  },
  async witness({ input }) {
    const wtns = await witness(input);
    const values = await snarkjs.wtns.exportJson(wtns);
    return values.map((v) => v.toString());
  },
};

// snarkjs checks only that points are on the curve; the EVM precompile (EIP-197) also
// requires G2 points in the prime-order subgroup, and so do we: [r]B must be the identity.
function inG2Subgroup(piB) {
  const { G2 } = globalThis.curve_bn128;
  const b = G2.fromObject(ffjavascript.utils.unstringifyBigInts(piB));
  return G2.isValid(b) && G2.isZero(G2.timesScalar(b, globalThis.curve_bn128.r));
}

async function batchVerify(vk, items) {
  const { Scalar, utils } = ffjavascript;
  const curve = globalThis.curve_bn128;
  const { G1, G2, Fr } = curve;
  const v = utils.unstringifyBigInts(vk);
  const nPub = v.nPublic;
  const rs = items.map(() => {
    const b = randomBytes(16);
    return Scalar.add(Scalar.fromRprLE(b, 0, 16), 1n);
  });
  const sums = new Array(nPub).fill(0n);
  let rSum = 0n;
  const pairs = [];
  const cs = new Uint8Array(G1.F.n8 * 2 * items.length);
  const rBuf = new Uint8Array(Fr.n8 * items.length);
  items.forEach((item, i) => {
    const signals = utils.unstringifyBigInts(item.signals);
    const proof = utils.unstringifyBigInts(item.proof);
    if (signals.length !== nPub) throw new Error(`item ${i}: expected ${nPub} signals`);
    const r = rs[i];
    for (let j = 0; j < nPub; j++) {
      if (!(signals[j] >= 0n && signals[j] < curve.r)) throw new Error(`item ${i}: signal >= r`);
      sums[j] = (sums[j] + r * signals[j]) % curve.r;
    }
    rSum = (rSum + r) % curve.r;
    const a = G1.fromObject(proof.pi_a);
    const b = G2.fromObject(proof.pi_b);
    const c = G1.fromObject(proof.pi_c);
    if (!G1.isValid(a) || !G2.isValid(b) || !G1.isValid(c)) throw new Error(`item ${i}: bad point`);
    if (!inG2Subgroup(proof.pi_b)) throw new Error(`item ${i}: pi_b not in the G2 subgroup`);
    pairs.push(G1.neg(G1.timesScalar(a, r)), b);
    cs.set(G1.toAffine(c), i * G1.F.n8 * 2);
    Scalar.toRprLE(rBuf, Fr.n8 * i, r, Fr.n8);
  });
  const ic = new Uint8Array(G1.F.n8 * 2 * nPub);
  const w = new Uint8Array(Fr.n8 * nPub);
  for (let j = 0; j < nPub; j++) {
    ic.set(G1.fromObject(v.IC[j + 1]), j * G1.F.n8 * 2);
    Scalar.toRprLE(w, Fr.n8 * j, sums[j], Fr.n8);
  }
  const vkx = G1.add(await G1.multiExpAffine(ic, w), G1.timesScalar(G1.fromObject(v.IC[0]), rSum));
  const cAgg = await G1.multiExpAffine(cs, rBuf);
  const alpha = G1.timesScalar(G1.fromObject(v.vk_alpha_1), rSum);
  return await curve.pairingEq(
    ...pairs,
    vkx, G2.fromObject(v.vk_gamma_2),
    cAgg, G2.fromObject(v.vk_delta_2),
    alpha, G2.fromObject(v.vk_beta_2),
  );
}

const out = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");
let chain = Promise.resolve();
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  // Requests are answered strictly in order: one in flight per worker keeps memory flat.
  chain = chain.then(async () => {
    let req;
    try {
      req = JSON.parse(line);
      const fn = ops[req.op];
      if (!fn) throw new Error(`unknown op ${req.op}`);
      out({ id: req.id, ok: true, result: await fn(req) });
    } catch (err) {
      out({ id: req?.id ?? null, ok: false, error: String(err?.message ?? err) });
    }
  });
});
rl.on("close", () => chain.then(() => process.exit(0)));
out({ id: 0, ok: true, result: "ready" });
