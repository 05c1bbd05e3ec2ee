// circomlibjs Poseidon vectors for tests/encode/test_poseidon.py.
// stdin:  JSON array of input arrays, each a list of decimal strings, e.g. [["1","2"], ["0"]]
// stdout: JSON array, per input {"wasm": "<decimal>", "reference": "<decimal>"}: circomlibjs's
//         default `buildPoseidon` (hand-written wasm, optimised constants) and its plain
//         `buildPoseidonReference`, so Python is checked against two independent implementations.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(path.join(root, "package.json"));
const { buildPoseidon, buildPoseidonReference } = await import(require.resolve("circomlibjs"));

const vectors = JSON.parse(readFileSync(0, "utf8"));
const fast = await buildPoseidon();
const reference = await buildPoseidonReference();
const out = vectors.map((inputs) => {
  const xs = inputs.map((s) => BigInt(s));
  return {
    wasm: fast.F.toString(fast(xs), 10),
    reference: reference.F.toString(reference(xs), 10),
  };
});
process.stdout.write(JSON.stringify(out));
process.exit(0);
