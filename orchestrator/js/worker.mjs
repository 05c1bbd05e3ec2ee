// Long-lived snarkjs worker: keeps the circuit wasm and proving key in memory and answers
// JSON-lines requests on stdin, so a proof costs the MSMs and FFTs, not node start-up and
// file parsing. Spawned and owned by orchestrator/prover.py; one worker per core.
//
// Request:  {"id": 1, "op": "prove", "input": {...decimal strings...}}
//           {"id": 2, "op": "verify", "signals": [...], "proof": {...}}
//           {"id": 3, "op": "witness", "input": {...}}      (full witness, for tests)
//           {"id": 4, "op": "wtns", "input": {...}}         (.wtns file bytes, base64)
// Response: {"id": 1, "ok": true, "result": ...} or {"id": 1, "ok": false, "error": "..."}
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
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
    return await snarkjs.groth16.verify(k, signals, proof);
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
