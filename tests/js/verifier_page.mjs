// Drive the built verifier page in headless Chromium (playwright-core, the system browser):
// for each case, a fresh browser context opens the page from a file:// URL, the trust document
// and the bundle are set on the page's own file inputs, and the verdicts are read back from
// the page. A case with `page_url` opens that page instead (as `vbill serve` serves it), and
// one with `trust_url` has the page fetch the trust document (the one request a user asks for).
// Prints one JSON object: {cases: [{name, state, result, trust_status, requests, again_ms}]}.
//   node tests/js/verifier_page.mjs PAGE.html CASES.json [CHROMIUM]

import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const [page, casesFile, executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(casesFile, "utf8"));
const browser = await chromium.launch({
  executablePath,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
  ],
});
const url = pathToFileURL(page).href;
const out = [];
try {
  for (const c of cases) {
    const context = await browser.newContext();
    const tab = await context.newPage();
    const errors = [];
    tab.on("pageerror", (e) => errors.push(String(e)));
    await tab.goto(c.page_url ?? url, { waitUntil: "load" });
    const requests = [];
    tab.on("request", (r) => requests.push(r.url()));
    if (c.trust_url) {
      await tab.click("details summary");
      await tab.fill("#trust-url", c.trust_url);
      await tab.click("#trust-fetch");
      await tab.waitForFunction(() => document.getElementById("trust-status").textContent !== "No trust document yet.");
    } else {
      await tab.setInputFiles("#trust-file", c.trust);
    }
    // Later trust documents dropped on the same page (the pin), each status line recorded.
    const trust_steps = [];
    for (const step of c.trust_steps ?? []) {
      const before = await tab.textContent("#trust-status");
      if (step.repin) await tab.check("#repin");
      await tab.setInputFiles("#trust-file", []);
      await tab.setInputFiles("#trust-file", step.file);
      await tab.waitForFunction((b) => document.getElementById("trust-status").textContent !== b, before);
      trust_steps.push(await tab.textContent("#trust-status"));
    }
    await tab.setInputFiles("#bundle-file", c.bundle);
    const ok = await tab
      .waitForFunction(() => ["done", "waiting"].includes(document.getElementById("verdicts").dataset.state), null, { timeout: 120_000 })
      .then(() => true, () => false);
    const seen = await tab.evaluate(() => ({
      state: document.getElementById("verdicts").dataset.state,
      trust_status: document.getElementById("trust-status").textContent,
      text: document.getElementById("verdicts").innerText,
      result: window.vbillResult ?? null,
    }));
    let again = null;
    if (c.again && seen.state === "done") {
      // Re-verify in the same page: curves and Poseidon are warm, so this is the steady cost.
      await tab.evaluate(() => (document.getElementById("verdicts").dataset.state = "again"));
      await tab.setInputFiles("#bundle-file", []);
      await tab.setInputFiles("#bundle-file", c.bundle);
      await tab.waitForFunction(() => document.getElementById("verdicts").dataset.state === "done");
      again = await tab.evaluate(() => window.vbillResult.ms);
    }
    out.push({ name: c.name, finished: ok, ...seen, errors, requests, trust_steps, again_ms: again });
    await context.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify({ cases: out }));
