// Build the verifier page: one self-contained HTML file (inline script, no imports at run
// time), so it opens from a file:// URL with no server and makes no request after load.
//   node orchestrator/vbill/verifier/build.mjs [OUT]   (default build/verifier/index.html)

import { build } from "esbuild";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../..");
const out = resolve(process.argv[2] ?? join(root, "build/verifier/index.html"));

// circomlibjs exports only its whole index (which pulls in ethers v5 and node modules); the page
// needs Poseidon alone, and the `assert` it imports.
const narrow = {
  name: "narrow-imports",
  setup(b) {
    b.onResolve({ filter: /^circomlibjs\/src\// }, (a) => ({
      path: join(root, "node_modules", a.path),
    }));
    b.onResolve({ filter: /^assert$/ }, () => ({ path: join(here, "src/assert.js") }));
  },
};

const result = await build({
  entryPoints: [join(here, "src/main.js")],
  bundle: true,
  format: "iife",
  platform: "browser",
  target: "es2022",
  minify: true,
  write: false,
  legalComments: "none",
  plugins: [narrow],
  logLevel: "warning",
});
const script = result.outputFiles[0].text.replaceAll("</script", "<\\/script");
const html = readFileSync(join(here, "index.html"), "utf8");
const marker = "<script>/* bundle */</script>";
if (!html.includes(marker)) throw new Error(`index.html has no ${marker}`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, html.replace(marker, () => `<script>${script}</script>`));
console.log(`${out}: ${(Buffer.byteLength(html) + script.length) >> 10} KiB`);
