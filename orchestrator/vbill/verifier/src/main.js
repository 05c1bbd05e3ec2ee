// The verifier page: read the dropped files, check the trust document, show the three verdicts
// of a bundle, or a window statement's chain and totals. No request is made after load except
// the trust-document fetch a user asks for.

import { floatText } from "./canonical.js";
import { JsonFloat, JsonSyntaxError, isObject, parseJson } from "./json.js";
import { TrustError, trustFromDocument } from "./trust.js";
import { warmCurve } from "./groth16.js";
import { loadPoseidon } from "./signals.js";
import { VOID, correctionKind } from "./bindings.js";
import { verifyCorrection } from "./correction.js";
import { isStatementDocument, verifyStatement } from "./statement.js";
import { isVerifyRequest, requestFromBundle, unreadable, verifyRequest } from "./verify.js";

const PIN_KEY = "vbill-trust-pin";
const $ = (id) => document.getElementById(id);
const state = { trust: null, trustText: null, bundle: null, bundleName: null };

const TITLES = {
  verification: ["Signed and logged", "Signed by a trusted attester and recorded in the transparency log"],
  billing_check: ["Charge recomputed", "The charge follows from the metered usage and the tariff"],
  incircuit_binding_verification: ["Proof checked", "The zero-knowledge proof binds this charge to this record"],
};
// A correction's (docs/protocol-corrections.md): a credit, not a charge.
const CORRECTION_TITLES = {
  ...TITLES,
  billing_check: ["Credit recomputed", "The credit follows from the window's state and the corrected event's tariff"],
  incircuit_binding_verification: ["Proof checked", "The zero-knowledge proof binds this credit to the corrected event and the window"],
};
const VOID_TITLES = {
  ...TITLES,
  billing_check: ["Credit recomputed", "The credit is the voided event's charge, recomputed from its usage and tariff"],
  incircuit_binding_verification: ["Original opened", "The voided event's commitment and nullifier follow from the record it opens"],
};

function status(id, text, good) {
  const el = $(id);
  el.textContent = text;
  el.className = `status ${good === undefined ? "" : good ? "good" : "bad"}`;
}

function readPin() {
  try {
    return localStorage.getItem(PIN_KEY);
  } catch {
    return null; // storage may be off for file:// pages; pinning is then per visit
  }
}

function writePin(text) {
  try {
    localStorage.setItem(PIN_KEY, text);
  } catch {
    /* not persistent here */
  }
}

/** Load a trust document; TOFU: a document that differs from the pinned one needs "replace". */
function loadTrust(text, source) {
  let trust;
  try {
    trust = trustFromDocument(parseJson(text));
  } catch (e) {
    const why = e instanceof JsonSyntaxError ? `is not JSON (${e.message})` : e.message;
    status("trust-status", `Refused ${source}: ${why}`, false);
    return;
  }
  const pinned = readPin();
  if (pinned && pinned !== text && !$("repin").checked && source !== "the pinned document") {
    status("trust-status", `Refused ${source}: it differs from the trust document pinned in this browser (issuer ${pinnedIssuer(pinned)}). Tick "replace the pinned document" to pin it on purpose.`, false);
    return;
  }
  writePin(text);
  $("repin").checked = false;
  state.trust = trust;
  const keys = trust.bindings.map((b) => `${b.version} (${b.ceremony}, key ${b.vkey_sha256.slice(0, 12)}…)`).join("; ");
  status("trust-status", `Pinned: issued by ${trust.issuer} at ${trust.issuedAt}. Keys: ${keys}. Attesters: ${trust.attesters.length}, revoked: ${trust.revokedAttesters.length}, retired: ${trust.retired.size}.`, true);
  render();
}

function pinnedIssuer(text) {
  try {
    return parseJson(text).issuer;
  } catch {
    return "unknown";
  }
}

function loadBundle(text, name) {
  state.bundleName = name;
  try {
    state.bundle = { value: parseJson(text) };
    const v = state.bundle.value;
    const what = isStatementDocument(v)
      ? `: a window statement${Array.isArray(v.bundles) ? ` of ${v.bundles.length} bundles` : ""}`
      : correctionKind(v) !== null
        ? `: a ${correctionKind(v) === VOID ? "void" : "correction"}${isObject(v.correction) && typeof v.correction.corrects === "string" ? ` of ${v.correction.corrects}` : ""}`
        : "";
    status("bundle-status", `Read ${name}${what}.`, true);
  } catch (e) {
    state.bundle = { error: `the file ${name} is not JSON (${e.message})` };
    status("bundle-status", `${name} is not JSON.`, false);
  }
  render();
}

const show = (v) =>
  typeof v === "bigint" ? v.toLocaleString("en-US") : v instanceof JsonFloat ? floatText(v.value) : String(v);

/** A <dl> and its add(term, value) (nothing for an absent value). */
function factList() {
  const dl = document.createElement("dl");
  dl.className = "facts";
  const add = (k, v) => {
    if (v === undefined || v === null) return;
    dl.append(Object.assign(document.createElement("dt"), { textContent: k }));
    dl.append(Object.assign(document.createElement("dd"), { textContent: show(v) }));
  };
  return [dl, add];
}

/** The result as plain JSON values (BigInt → number when exact, else decimal text). */
const plain = (v) =>
  typeof v === "bigint"
    ? Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()
    : v instanceof JsonFloat
      ? v.value
      : Array.isArray(v)
        ? v.map(plain)
        : v !== null && typeof v === "object"
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
          : v;

const el = (tag, props, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};

function facts(request) {
  const rec = request.expected_billing_v2;
  const [dl, add] = factList();
  if (isObject(rec)) {
    const m = isObject(rec.meter_event) ? rec.meter_event : {};
    const t = isObject(rec.tariff_snapshot) ? rec.tariff_snapshot : {};
    const b = isObject(rec.billing) ? rec.billing : {};
    add("tenant", m.tenant_id);
    add("event", m.event_id);
    add("time", m.event_timestamp);
    add("usage units", m.usage_units);
    if (isObject(m.usage)) add("usage", Object.entries(m.usage).map(([k, v]) => `${k} ${show(v)}`).join(", "));
    if (isObject(b.window)) add("place in its window", `seq ${show(b.window.seq)} of ${m.billing_window_id ?? "?"}`);
    add("unit price (micros)", t.unit_price_micros);
    add("tariff", isObject(t) && t.tariff_id ? `${t.tariff_id} ${t.tariff_version ?? ""}` : undefined);
    add("attested charge (micros)", b.expected_charge_micros);
  }
  const billed = request.billed_billing_v2;
  if (isObject(billed) && isObject(billed.billing) && billed !== rec) add("billed charge (micros)", billed.billing.expected_charge_micros);
  const att = isObject(request.attestation) ? request.attestation : {};
  add("attester", att.attester);
  const usage = isObject(request.usage) ? request.usage : {};
  add("cost (ETH)", usage.cost_eth);
  add("cost (USD)", usage.cost_usd);
  if (isObject(att.usd_rate)) {
    add("USD per ETH", att.usd_rate.rate);
    add("rate source", att.usd_rate.source);
    add("rate as of", att.usd_rate.time);
  }
  return dl;
}

/** What a correction or void document says: the event it corrects, why, and the credit. */
function correctionFacts(doc) {
  const [dl, add] = factList();
  const c = isObject(doc.correction) ? doc.correction : {};
  const o = isObject(doc.original) ? doc.original : {};
  const m = isObject(o.meter_event) ? o.meter_event : {};
  const b = isObject(doc.billing) ? doc.billing : {};
  add("tenant", c.tenant_id);
  add("corrects event", c.corrects);
  add("correction", c.correction_id);
  add("reason", c.reason);
  if (isObject(c.usage)) add("units taken back", Object.entries(c.usage).map(([k, v]) => `${k} ${show(v)}`).join(", "));
  else if (correctionKind(doc) === VOID) add("units taken back", "every unit (a void)");
  if (isObject(b.window)) add("place in its window", `seq ${show(b.window.seq)} of ${m.billing_window_id ?? "?"}`);
  add("the event's charge (micros)", o.expected_charge_micros);
  add("credit (micros)", b.credit_micros);
  add("attester", isObject(doc.attestation) ? doc.attestation.attester : undefined);
  return dl;
}

let run = 0;
async function render() {
  const out = $("verdicts");
  if (!state.bundle) return;
  if (!state.trust) {
    out.dataset.state = "waiting";
    out.textContent = "Drop the provider's trust document to check this bundle.";
    return;
  }
  const mine = ++run;
  out.dataset.state = "running";
  out.textContent = "Checking…";
  const t0 = performance.now();
  if (!state.bundle.error && isStatementDocument(state.bundle.value)) {
    const st = await verifyStatement(state.bundle.value, state.trust);
    if (mine === run) renderStatement(out, st, performance.now() - t0);
    return;
  }
  let request = Object.create(null);
  let result;
  let titles = TITLES;
  let shownFacts = null;
  if (state.bundle.error) {
    result = unreadable(state.bundle.error);
  } else if (correctionKind(state.bundle.value) !== null) {
    const doc = state.bundle.value;
    result = await verifyCorrection(doc, state.trust);
    titles = correctionKind(doc) === VOID ? VOID_TITLES : CORRECTION_TITLES;
    shownFacts = correctionFacts(doc);
  } else {
    const v = state.bundle.value;
    request = isVerifyRequest(v) ? v : requestFromBundle(v);
    result = await verifyRequest(request, state.trust);
  }
  const ms = performance.now() - t0;
  if (mine !== run) return;
  out.replaceChildren();
  for (const key of Object.keys(titles)) {
    const verdict = result[key];
    const [title, meaning] = titles[key];
    const card = document.createElement("div");
    card.className = "verdict";
    card.id = `verdict-${key}`;
    card.dataset.valid = String(verdict.valid);
    card.append(Object.assign(document.createElement("h3"), { textContent: `${verdict.valid ? "✓" : "✗"} ${title}` }));
    const reason = verdict.valid ? meaning + "." : `Failed: ${verdict.reason}.`;
    card.append(Object.assign(document.createElement("p"), { className: "reason", textContent: reason }));
    card.append(Object.assign(document.createElement("p"), { className: "small", textContent: key }));
    out.append(card);
  }
  for (const w of result.warnings ?? []) {
    out.append(Object.assign(document.createElement("p"), { className: "warning", textContent: `Warning: ${w}.` }));
  }
  out.append(Object.assign(document.createElement("p"), {
    className: "overall",
    textContent: shownFacts
      ? result.valid
        ? "This correction checks out: every verdict holds, so its credit is owed."
        : "This correction does not check out: see the failed verdicts above."
      : result.valid
        ? "This bill checks out: every verdict holds."
        : "This bill does not check out: see the failed verdicts above.",
  }));
  out.append(shownFacts ?? facts(request));
  out.append(Object.assign(document.createElement("p"), {
    className: "small",
    textContent: `Checked ${state.bundleName} in ${ms.toFixed(0)} ms against the trust document issued by ${state.trust.issuer}.`,
  }));
  window.vbillResult = { ...result, ms };
  out.dataset.state = "done";
}

const verdictWord = (r) => (r.valid ? "✓ valid" : "✗ ");

/** A window statement: its verdict, totals or first bad link, and a row per bundle. */
function renderStatement(out, st, ms) {
  out.replaceChildren();
  const s = st.summary;
  const head = s ? `${show(s.tenant_id ?? "?")} / ${show(s.billing_window_id ?? "?")} / ${show(s.tariff_id ?? "?")}` : "";
  const card = el("div", { className: "verdict", id: "statement-verdict" });
  card.dataset.valid = String(st.valid);
  card.append(el("h3", { textContent: `${st.valid ? "✓" : "✗"} Window statement ${head}` }));
  const corrections = s ? s.corrections.length : 0;
  const netOf = corrections ? ` and ${corrections} correction${corrections === 1 ? "" : "s"}` : "";
  if (st.valid) {
    card.append(el("p", { className: "reason", textContent: `Every bundle verifies and they form one unbroken chain from the start of the window: ${show(s.events)} events${netOf}, total ${show(s.total_micros)} micros ${s.currency}${corrections ? " net of the credits" : ""}.` }));
  } else if (st.malformed || !st.problems.length) {
    card.append(el("p", { className: "reason", textContent: `Failed: ${st.reason}.` }));
  } else {
    card.append(el("p", { className: "reason", id: "first-bad-link", textContent: `Failed at the first bad link: ${st.problems[0].message}.` }));
    if (st.problems.length > 1) {
      const list = el("ul", { className: "small" });
      for (const p of st.problems.slice(1)) list.append(el("li", { textContent: `${p.message}.` }));
      card.append(el("details", {}, el("summary", { className: "small", textContent: `${st.problems.length - 1} more problem(s)` }), list));
    }
  }
  out.append(card);
  if (s) {
    const [dl, add] = factList();
    add("events", s.events);
    if (corrections) add("corrections", corrections);
    add(corrections ? "total, net of corrections (micros)" : "total (micros)", st.valid ? s.total_micros : null);
    add(corrections ? "sum of the charges less the credits (micros)" : "sum of the charges (micros)", s.sum_of_charges_micros);
    add("currency", s.currency);
    for (const [k, v] of Object.entries(s.totals_by_dimension)) add(`total ${k} (${corrections ? "net " : ""}units)`, v);
    out.append(dl);
  }
  if (corrections) {
    const table = el("table", { className: "small", id: "statement-corrections" });
    table.append(el("caption", { textContent: "Corrections: credits for corrected events, each proved and logged in the window's chain" }));
    table.append(el("tr", {}, ...["seq", "correction", "corrects event", "reason", "units taken back", "credit (micros)"].map((t) => el("th", { textContent: t }))));
    for (const c of s.corrections) {
      const taken = Object.entries(c.usage).map(([k, v]) => `${k} ${show(v)}`).join(", ");
      table.append(el("tr", { className: "correction" }, ...[show(c.seq), show(c.correction_id), show(c.corrects), show(c.reason), taken, show(c.credit_micros)].map((t) => el("td", { textContent: t }))));
    }
    out.append(table);
  }
  if (st.bundles.length) {
    const table = el("table", { className: "small", id: "statement-bundles" });
    table.append(el("tr", {}, ...["#", "event", "seq", "charge (micros)", "bundle"].map((t) => el("th", { textContent: t }))));
    st.bundles.forEach((b, i) => {
      const r = b.result;
      const why = r.valid ? "" : Object.values(r).find((v) => v && v.valid === false && v.reason)?.reason ?? "";
      table.append(el("tr", {}, ...[String(i + 1), b.event ?? "?", b.seq === null ? "?" : show(b.seq), b.charge === null ? "?" : show(b.charge), verdictWord(r) + why].map((t) => el("td", { textContent: t }))));
    });
    out.append(table);
  }
  if (st.invoice) {
    const inv = st.invoice;
    const table = el("table", { className: "small", id: "statement-invoice" });
    table.append(el("caption", { textContent: `Invoice (${inv.closed ? "closed window" : "open window: it may still grow"}): every line re-derived from the bundles` }));
    table.append(el("tr", {}, ...["item", "units", "unit price (micros)", "amount (micros)", `amount (${s.currency})`].map((t) => el("th", { textContent: t }))));
    for (const l of inv.lines) {
      const item = l.kind === "usage"
        ? `${l.dimension}, tier ${l.tier} (${l.tier_from}${l.tier_to === null ? " and up" : ` to ${l.tier_to}`})${l.free ? ", free allowance" : ""}, tariff version ${l.tariff_version}`
        : l.description;
      const cells = [item, l.kind === "usage" ? l.units : "", l.kind === "usage" ? l.unit_price_micros : "", l.amount_micros, l.amount];
      table.append(el("tr", { className: `line ${l.kind}` }, ...cells.map((t) => el("td", { textContent: t }))));
    }
    table.append(el("tr", {}, ...["total", "", "", inv.total_micros, inv.total].map((t) => el("td", { textContent: t }))));
    out.append(table);
  } else if (st.invoiceProblem) {
    out.append(el("p", { className: "warning", textContent: `No invoice: ${st.invoiceProblem}.` }));
  }
  out.append(el("p", {
    className: "overall",
    textContent: st.valid
      ? `This statement checks out: total ${show(s.total_micros)} micros ${s.currency} over ${show(s.events)} events${netOf}.`
      : "This statement does not check out: see the first bad link above.",
  }));
  out.append(el("p", {
    className: "small",
    textContent: `Checked ${state.bundleName} (${st.bundles.length} bundles) in ${ms.toFixed(0)} ms against the trust document issued by ${state.trust.issuer}.`,
  }));
  window.vbillResult = plain({ kind: "statement", valid: st.valid, malformed: st.malformed, reason: st.reason, summary: st.summary, problems: st.problems, invoice: st.invoice ?? null, bundles: st.bundles.map((b) => ({ event: b.event, seq: b.seq, charge: b.charge, valid: b.result.valid })), ms });
  out.dataset.state = "done";
}

function wire(dropId, inputId, onText) {
  const zone = $(dropId);
  const read = (file) => file && file.text().then((t) => onText(t, file.name));
  $(inputId).addEventListener("change", (e) => read(e.target.files[0]));
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    read(e.dataTransfer.files[0]);
  });
}

wire("trust-drop", "trust-file", (t, name) => loadTrust(t, name));
wire("bundle-drop", "bundle-file", loadBundle);
$("trust-fetch").addEventListener("click", async () => {
  const url = $("trust-url").value.trim();
  if (!url) return;
  try {
    const res = await fetch(url, { cache: "no-store", credentials: "omit" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    loadTrust(await res.text(), url);
  } catch (e) {
    status("trust-status", `Could not fetch ${url}: ${e.message}`, false);
  }
});
const pinned = readPin();
if (pinned) loadTrust(pinned, "the pinned document");
// Build the curve and Poseidon while the user picks files (in-page wasm, no request).
Promise.all([warmCurve(), loadPoseidon()]).catch(() => {});
