// Window statements (docs/protocol-v2.md §11), judged as vbill.verify.statement judges them:
// every bundle valid, all of one window (tenant, billing_window_id, tariff_id), seq 1..n in the
// order given from the genesis state, each continuing the previous state key, and the totals
// the last state states equal to what the events add up to. Problems carry the kind and the
// index the CLI reports, and a message in plain words; the first one is the first bad link.

import { closeProblem } from "./close.js";
import { hashString, parseFieldElement } from "./encoding.js";
import { invoiceOf } from "./invoice.js";
import { JsonFloat, isObject, pyEq, pyInt } from "./json.js";
import { hasher, pack } from "./metered.js";
import { correctionKind } from "./bindings.js";
import { verifyCorrection } from "./correction.js";
import { requestFromBundle, unreadable, verifyRequest } from "./verify.js";

export const STATEMENT_VERSION = "vbill-statement-1";
const SUMMARY_KEYS = ["tenant_id", "billing_window_id", "tariff_id", "currency", "events", "total_micros", "totals_by_dimension"];
const VERDICT_WORDS = {
  verification: "its signature or log receipt does not hold",
  billing_check: "its charge does not follow from its usage and tariff",
  incircuit_binding_verification: "its zero-knowledge proof does not hold",
};
const WINDOW_WORDS = { tenant_id: "tenant", billing_window_id: "billing window", tariff_id: "tariff" };

export const isStatementDocument = (v) => isObject(v) && v.statement_version === STATEMENT_VERSION;

/** An integer field of a link as the wire writes it, a JSON integer or a decimal string
 *  (vbill.verify.statement._whole: a bool or a float is refused, never truncated). */
function whole(v) {
  if (typeof v === "boolean" || !(typeof v === "bigint" || typeof v === "string")) throw new TypeError("not an integer");
  return pyInt(v);
}

const shown = (v) =>
  v === null || v === undefined
    ? "nothing"
    : typeof v === "string" ? `"${v}"` : typeof v === "bigint" ? v.toLocaleString("en-US") : v instanceof JsonFloat ? String(v.value) : JSON.stringify(v, (_, x) => (typeof x === "bigint" ? Number(x) : x instanceof JsonFloat ? x.value : x)) ?? "nothing";

const get = (obj, key) => {
  if (!isObject(obj) || !Object.hasOwn(obj, key)) throw new TypeError(`no ${key}`);
  return obj[key];
};

/** The signal at `i` of an attestation's proof section (a TypeError if there is none). */
function signal(attestation, i) {
  const signals = get(get(attestation, "billing_proof"), "public_signals");
  if (!Array.isArray(signals) || signals.length <= i) throw new TypeError("no such signal");
  return signals[i];
}

/** The fields an event and a correction share: the window's key and states, read from the
 *  (original) event's meter and tariff, and the state keys of signals 5 and 6 (_chain_fields). */
function chainFields(label, index, event, window, attestation) {
  const meter = get(event, "meter_event");
  const tariff = get(event, "tariff_snapshot");
  return {
    label, index,
    seq: whole(get(window, "seq")),
    window: [get(meter, "tenant_id"), get(meter, "billing_window_id"), get(tariff, "tariff_id")],
    currency: get(tariff, "currency"),
    prevKey: signal(attestation, 5),
    key: signal(attestation, 6),
    before: get(window, "before"),
    after: get(window, "after"),
    accountSalt: get(get(attestation, "billing_proof"), "account_salt"),
  };
}

const units = (usage, sign) => {
  if (!isObject(usage)) throw new TypeError("no usage");
  return new Map(Object.entries(usage).map(([k, v]) => [k, sign * whole(v)]));
};

/** The chain fields of a bundle or a correction document (vbill.verify.statement._link): a
 *  correction moves the window back by its credit and units, and its signal 7 is the corrected
 *  event's commitment. Null if it has none (not metered). */
function link(label, index, b) {
  try {
    if (correctionKind(b) !== null) {
      const [original, billing, cor] = [get(b, "original"), get(b, "billing"), get(b, "correction")];
      const window = get(billing, "window");
      const credit = whole(get(billing, "credit_micros"));
      const fields = chainFields(label, index, original, window, get(b, "attestation"));
      return {
        ...fields,
        charge: -credit,
        usage: units(get(cor, "usage"), -1n),
        commitment: signal(get(b, "attestation"), 7),
        eventId: get(cor, "corrects"),
        correction: {
          seq: fields.seq, correction_id: get(cor, "correction_id"), corrects: get(cor, "corrects"),
          reason: get(cor, "reason"), credit_micros: credit, usage: Object.fromEntries(units(get(cor, "usage"), 1n)),
        },
      };
    }
    const billing = get(b, "billing");
    return {
      ...chainFields(label, index, b, get(billing, "window"), get(b, "attestation")),
      charge: whole(get(billing, "expected_charge_micros")),
      usage: units(get(get(b, "meter_event"), "usage"), 1n),
      commitment: signal(get(b, "attestation"), 0),
      eventId: get(get(b, "meter_event"), "event_id"),
      correction: null,
    };
  } catch (e) {
    if (e instanceof TypeError) return null;
    throw e;
  }
}

function firstFailure(result) {
  for (const k of Object.keys(VERDICT_WORDS)) {
    if (!result[k].valid) return { verdict: k, words: VERDICT_WORDS[k], reason: result[k].reason };
  }
  return { verdict: null, words: "it does not verify", reason: null };
}

/** What a row names: its event, or for a correction "correction C of E". */
function eventOf(b) {
  if (correctionKind(b) !== null) {
    const c = isObject(b.correction) ? b.correction : {};
    return typeof c.correction_id === "string" ? `correction ${c.correction_id} of ${typeof c.corrects === "string" ? c.corrects : "?"}` : null;
  }
  return isObject(b) && isObject(b.meter_event) && typeof b.meter_event.event_id === "string" ? b.meter_event.event_id : null;
}

/**
 * Verify a statement document (parsed JSON) against the trust set. Returns
 * {valid, malformed, reason, summary (the CLI's --json summary), problems: [{kind, index,
 * message}], bundles: [{label, event, seq, charge, result}]}. Never throws.
 */
export async function verifyStatement(doc, trust) {
  const bundles = doc.bundles;
  if (!Array.isArray(bundles)) {
    const reason = "the statement is malformed: its \"bundles\" must be a list of bundles";
    return { valid: false, malformed: true, reason, summary: null, problems: [], bundles: [] };
  }
  const problems = [];
  const rows = [];
  const links = [];
  const labelOf = (i) => {
    const ev = eventOf(bundles[i]);
    return `bundle ${i + 1}${ev ? (correctionKind(bundles[i]) ? ` (${ev})` : ` (event ${ev})`) : ""}`;
  };
  for (let i = 0; i < bundles.length; i++) {
    const b = bundles[i];
    const label = labelOf(i);
    const result = !isObject(b)
      ? unreadable("it is not a JSON object")
      : correctionKind(b) !== null ? await verifyCorrection(b, trust) : await verifyRequest(requestFromBundle(b), trust);
    const row = { label, event: eventOf(b), seq: null, charge: null, result };
    rows.push(row);
    if (!result.valid) {
      const f = firstFailure(result);
      problems.push({ kind: "bad_bundle", index: i, message: `${label} does not verify: ${f.words}${f.reason ? ` (${f.reason})` : ""}` });
    }
    const l = link(label, i, b);
    if (l === null) {
      problems.push({ kind: "not_metered", index: i, message: `${label} is not a metered bundle: it has no window state or no state keys, so it cannot be part of a window's chain` });
      continue;
    }
    row.seq = l.seq;
    row.charge = l.charge;
    links.push(l);
  }
  const st = { tenant_id: null, billing_window_id: null, tariff_id: null, currency: null, charges_sum: 0n, last_total: null, totals_by_dimension: Object.create(null), corrections: [] };
  if (links.length) {
    const g = await checkGenesis(links[0]); // first: why the totals below do not add up
    if (g) problems.push(g);
    checkChain(st, links, problems, labelOf);
  }
  // a closed window's statement carries its close record and must end exactly there
  const close = Object.hasOwn(doc, "close") && doc.close !== null ? doc.close : null;
  const closed = close !== null;
  if (closed) checkClose({ ...st, events: rows.length }, links, close, trust, problems);
  const events = rows.length - links.filter((l) => l.correction !== null).length; // corrections are no events
  const summaryOf = (total) => ({
    tenant_id: st.tenant_id, billing_window_id: st.billing_window_id, tariff_id: st.tariff_id,
    currency: st.currency, events: BigInt(events), total_micros: total,
    sum_of_charges_micros: st.charges_sum, totals_by_dimension: st.totals_by_dimension,
    corrections: st.corrections,
  });
  const ours = summaryOf(st.last_total);
  // a window without corrections keeps the document it always had (no "corrections" member)
  const stated = [
    ...SUMMARY_KEYS,
    ...(Object.hasOwn(doc, "closed") || closed ? ["closed"] : []),
    ...(st.corrections.length || Object.hasOwn(doc, "corrections") ? ["corrections"] : []),
  ];
  const withClosed = { ...ours, closed };
  for (const key of stated) {
    const claimed = Object.hasOwn(doc, key) ? doc[key] : null;
    if (!pyEq(claimed, withClosed[key])) {
      problems.push({ kind: "summary", index: null, message: `the statement says its ${key.replaceAll("_", " ")} is ${shown(claimed)}, but its bundles give ${shown(withClosed[key])}` });
    }
  }
  const order = (p) => (p.index === null ? Number.MAX_SAFE_INTEGER : p.index);
  problems.sort((a, b) => order(a) - order(b));
  const valid = problems.length === 0 && events > 0;
  // the invoice a finance team reads, re-derived from the verified bundles and corrections
  let invoice = null;
  let invoiceProblem = null;
  if (valid) {
    try {
      invoice = { closed, ...invoiceOf(bundles, st.last_total), corrections: st.corrections };
    } catch (e) {
      invoiceProblem = e.message;
    }
  }
  return {
    valid,
    malformed: false,
    reason: rows.length === 0 ? "the statement has no bundles" : events === 0 ? "the statement has corrections but no events" : null,
    summary: { valid, ...summaryOf(valid ? st.last_total : null), closed, problems: problems.map((p) => ({ kind: p.kind, index: p.index })) },
    invoice,
    invoiceProblem,
    problems,
    bundles: rows,
  };
}

function checkChain(st, links, problems, labelOf) {
  const first = links[0];
  [st.tenant_id, st.billing_window_id, st.tariff_id] = first.window;
  st.currency = first.currency;
  const seqs = links.map((l) => l.seq);
  const seen = new Map(); // seq (decimal text) -> the first link with it
  let previous = null;
  links.forEach((l, pos) => {
    const problem = otherWindow(first, l) ?? badLink(previous, l, seen, seqs.slice(pos + 1), labelOf);
    if (problem) problems.push(problem);
    if (!seen.has(l.seq.toString())) seen.set(l.seq.toString(), l);
    previous = l;
  });
  checkCorrections(st, links, problems);
  const last = links[links.length - 1];
  st.charges_sum = links.reduce((sum, l) => sum + l.charge, 0n);
  try {
    st.last_total = pyInt(get(last.after, "charge"));
    const units = get(last.after, "units");
    if (!isObject(units)) throw new TypeError("no units");
    const totals = Object.create(null);
    for (const [k, v] of Object.entries(units)) totals[k] = pyInt(v);
    st.totals_by_dimension = totals;
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    problems.push({ kind: "total", index: last.index, message: `${last.label}, the last of the window, has no readable running total after it` });
    return;
  }
  if (st.last_total !== st.charges_sum) {
    problems.push({
      kind: "total", index: last.index,
      message: `the window's running total after ${last.label} is ${st.last_total.toLocaleString("en-US")} micros, but the charges of its events add up to ${st.charges_sum.toLocaleString("en-US")}`,
    });
  }
  for (const [name, total] of Object.entries(st.totals_by_dimension)) {
    const used = links.reduce((sum, l) => sum + (l.usage.get(name) ?? 0n), 0n);
    if (used !== total) {
      problems.push({
        kind: "total", index: last.index,
        message: `the window's running total of ${name} after ${last.label} is ${total.toLocaleString("en-US")}, but its events used ${used.toLocaleString("en-US")}`,
      });
    }
  }
}

/** The state key of a window's genesis state (docs/protocol-v2.md §4), recomputed. */
export async function genesisKey(tenantId, windowId, tariffId, accountSalt) {
  const H = await hasher();
  const ids = [tenantId, windowId, tariffId].map(hashString);
  return H([...ids, pack(0n, 0n, 0n), pack(0n, 0n, 0n), 0n, accountSalt]);
}

/** The first bundle starts the window's chain: its state before is genesis (seq 0, all zero)
 * and its prev_state_key the genesis key of its window (vbill.verify.statement._check_genesis). */
async function checkGenesis(first) {
  if (first.seq !== 1n) return null; // reported as a gap before it
  const b = first.before;
  const zero = (v) => v === "0";
  const isGenesis =
    isObject(b) && typeof b.seq === "bigint" && b.seq === 0n && zero(b.amount) && zero(b.charge) &&
    isObject(b.units) && Object.values(b.units).every(zero);
  let why = null;
  if (!isGenesis) {
    why = "its state before is not the genesis state (seq 0, all zero)";
  } else {
    let want = null;
    try {
      const [t, w, f] = first.window;
      if ([t, w, f].every((x) => typeof x === "string")) {
        want = await genesisKey(t, w, f, parseFieldElement(first.accountSalt, "billing_proof.account_salt"));
      }
    } catch (e) {
      want = null;
    }
    if (want === null || !(typeof first.prevKey === "string" && first.prevKey === want.toString())) {
      why = "its prev_state_key is not the genesis state key of this window";
    }
  }
  if (why === null) return null;
  return {
    kind: "genesis", index: first.index,
    message: `${first.label} must start the window's chain, but ${why}: earlier entries are missing, or the chain was started elsewhere`,
  };
}

/** The close record holds, names this window, and the chain ends exactly at it
 * (vbill.verify.statement._check_close). */
function checkClose(st, links, close, trust, problems) {
  const why = closeProblem(close, trust);
  if (why) {
    problems.push({ kind: "close", index: null, message: why });
    return;
  }
  if (!links.length) {
    if (!st.events) problems.push({ kind: "truncated", index: null, message: `the window was closed at seq ${close.last_seq}, but this statement has no entries at all` });
    return;
  }
  const first = links[0];
  const last = links[links.length - 1];
  const names = ["tenant_id", "billing_window_id", "tariff_id"];
  for (let i = 0; i < 3; i++) {
    if (!pyEq(close[names[i]], first.window[i])) {
      problems.push({ kind: "close", index: null, message: `the close record is for another ${WINDOW_WORDS[names[i]]} (${shown(close[names[i]])}), not this statement's ${shown(first.window[i])}` });
      return;
    }
  }
  const seq = close.last_seq;
  if (last.seq < seq) {
    const n = seq - last.seq;
    problems.push({ kind: "truncated", index: last.index, message: `the window was closed at seq ${seq}, but this statement ends at seq ${last.seq} (${last.label}): its last ${n === 1n ? "entry is" : `${n} entries are`} missing` });
    return;
  }
  if (last.seq > seq) {
    problems.push({ kind: "past_close", index: last.index, message: `${last.label} (seq ${last.seq}) is past the close at seq ${seq}: the window took no entries after its close` });
    return;
  }
  if (!pyEq(last.key, close.last_state_key)) {
    problems.push({ kind: "close", index: last.index, message: `${last.label} does not end where the window was closed: its state key is not the close record's` });
  }
  if (st.last_total !== null && st.last_total.toString() !== close.total_micros) {
    problems.push({ kind: "close", index: null, message: `the close record's total is ${close.total_micros} micros, but the chain gives ${st.last_total}` });
  }
  const totals = Object.entries(st.totals_by_dimension);
  const same = totals.length === Object.keys(close.totals_by_dimension).length &&
    totals.every(([k, v]) => close.totals_by_dimension[k] === v.toString());
  if (totals.length && !same) {
    problems.push({ kind: "close", index: null, message: "the close record's units per dimension are not the chain's" });
  }
}

/** Each correction names an earlier event of this chain by its commitment, once
 *  (vbill.verify.statement._check_corrections). */
function checkCorrections(st, links, problems) {
  const key = (id) => (typeof id === "string" ? id : JSON.stringify(id, (_, x) => (typeof x === "bigint" ? x.toString() : x)));
  const events = new Map(links.filter((l) => l.correction === null).map((l) => [key(l.eventId), l]));
  const corrected = new Set();
  for (const l of links) {
    if (l.correction === null) continue;
    st.corrections.push(l.correction);
    const target = events.get(key(l.eventId));
    let why = null;
    if (target === undefined || target.seq >= l.seq) why = `it corrects ${shown(l.eventId)}, which is not an earlier event of this window`;
    else if (!pyEq(target.commitment, l.commitment)) why = `the event it says it corrects is not ${shown(l.eventId)} (its commitment is another event's)`;
    else if (corrected.has(key(l.eventId))) why = `it is a second correction of ${shown(l.eventId)}: an event is corrected once`;
    corrected.add(key(l.eventId));
    if (why) problems.push({ kind: "correction", index: l.index, message: `${l.label} does not hold as a correction: ${why}` });
  }
}

function otherWindow(first, l) {
  const names = ["tenant_id", "billing_window_id", "tariff_id"];
  const i = names.findIndex((_, k) => !pyEq(l.window[k], first.window[k]));
  if (i < 0) return null;
  const what = WINDOW_WORDS[names[i]];
  return {
    kind: "other_window", index: l.index,
    message: `${l.label} belongs to another ${what} (${shown(l.window[i])}), not this statement's ${shown(first.window[i])}`,
  };
}

function badLink(previous, l, seen, later, labelOf) {
  const want = previous ? previous.seq + 1n : 1n;
  const p = (kind, message) => ({ kind, index: l.index, message: `${l.label} ${message}` });
  const firstWith = seen.get(l.seq.toString());
  if (firstWith) {
    return p("fork", `is a second event at seq ${l.seq} of the window (the first is ${labelOf(firstWith.index)}): the window's chain forks`);
  }
  if (l.seq !== want) {
    if (l.seq < want || later.includes(want)) {
      return p("reorder", `has seq ${l.seq} where seq ${want} belongs: the bundles are out of order`);
    }
    const missing = l.seq - 1n > want ? `seq ${want} to ${l.seq - 1n} are` : `seq ${want} is`;
    return p("gap", `has seq ${l.seq}, but ${missing} missing before it: an event of the window was left out`);
  }
  if (previous === null) return null; // seq 1: checkGenesis checks it starts at genesis
  if (!pyEq(l.prevKey, previous.key)) {
    return p("fork", `(seq ${l.seq}) does not continue ${previous.label} (seq ${previous.seq}): the state it starts from is not the state that bundle left, so the window's chain forks`);
  }
  return null;
}
