// Render an invoice page (vbill invoice --html) in headless Chromium (playwright-core, the
// system browser): read back its lines and total as a reader sees them, and print it on A4.
// Prints {lines: [[cells…]], total_micros, pages, pdf_bytes, errors}.
//   node tests/js/invoice_page.mjs PAGE.html PDF_OUT [CHROMIUM]

import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const [page, pdfOut, executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
try {
  const tab = await browser.newPage();
  const errors = [];
  tab.on("pageerror", (e) => errors.push(String(e)));
  const requests = [];
  tab.on("request", (r) => requests.push(r.url()));
  await tab.goto(pathToFileURL(page).href, { waitUntil: "load" });
  const seen = await tab.evaluate(() => ({
    lines: [...document.querySelectorAll("tr.line")].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.innerText.trim())),
    total_micros: document.getElementById("total-micros").innerText.trim(),
    overflow: document.documentElement.scrollWidth > document.documentElement.clientWidth,
  }));
  await tab.pdf({ path: pdfOut, format: "A4", printBackground: true });
  const pdf = readFileSync(pdfOut);
  const pages = (pdf.toString("latin1").match(/\/Type\s*\/Page[^s]/g) ?? []).length;
  process.stdout.write(JSON.stringify({ ...seen, pages, pdf_bytes: pdf.length, errors, requests: requests.slice(1) }));
} finally {
  await browser.close();
}
