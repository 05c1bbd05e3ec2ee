// Many witnesses of the compiled circuit from one node process (tests only).
// usage:  node witness_batch.mjs <circuit.wasm> [nOutputs=5]  < inputs.json
// stdin:  JSON array of circuit inputs (objects of decimal strings)
// stdout: JSON array, per input {"ok": true, "outputs": [witness[1..nOutputs] as decimals]}
//         or {"ok": false, "error": "..."} when the circuit rejects the input (an assert fails).
// Loads the wasm once and uses snarkjs's own `wtns.calculate`, the path `snarkjs wtns
// calculate` and the prover take, so each witness costs milliseconds instead of a node start.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(path.join(root, "package.json"));
const snarkjs = await import(require.resolve("snarkjs"));

const [wasmPath, nOutArg] = process.argv.slice(2);
const nOut = Number(nOutArg ?? 5);
const wasm = new Uint8Array(readFileSync(wasmPath));
const inputs = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const input of inputs) {
  try {
    const wtns = { type: "mem" };
    await snarkjs.wtns.calculate(input, { type: "mem", data: wasm }, wtns);
    const values = await snarkjs.wtns.exportJson(wtns);
    if (values[0] !== 1n) throw new Error("witness[0] is not the constant 1");
    results.push({ ok: true, outputs: values.slice(1, 1 + nOut).map((v) => v.toString()) });
  } catch (err) {
    results.push({ ok: false, error: String(err?.message ?? err).slice(0, 500) });
  }
}
process.stdout.write(JSON.stringify(results));
process.exit(0);
