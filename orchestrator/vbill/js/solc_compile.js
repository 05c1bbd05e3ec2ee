// Standard-JSON compile with the pinned solcjs: reads the input on stdin, writes the output
// (with `solcVersion` added) on stdout. Kept tiny: vbill/chain/contracts.py builds the input.
"use strict";
const path = require("path");
const solc = require(path.join(process.argv[2], "solc"));

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const output = JSON.parse(solc.compile(input));
  output.solcVersion = solc.version();
  process.stdout.write(JSON.stringify(output));
});
