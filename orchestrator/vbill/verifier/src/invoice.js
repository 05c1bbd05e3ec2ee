// The invoice of a verified window statement, as vbill.billing.invoice derives it (docs/
// protocol-v2.md §15): per (tariff version, dimension, tier) the units the events moved through
// that tier × its unit price, then the rounding difference and each per-event clamp
// difference, so the lines' amount_micros sum exactly to the total. A correction takes units
// back at its original's tariff: its tiers' units and money count negative, its credit is minus
// a charge, and a credit capped by the window's charge is a clamp line; a tier line that
// corrections took back whole is left out. Exact BigInt arithmetic in 10^-6 micros; amounts as
// decimal strings.

import { correctionKind } from "./bindings.js";
import { ROUNDING_MODES, encodePrice } from "./encoding.js";
import { roundMicros } from "./metered.js";

const SCALE = 1_000_000n;
const U64 = 1n << 64n;

/** value / 10^places as an exact decimal string (vbill.billing.invoice.decimal_text). */
export function decimalText(value, places) {
  const neg = value < 0n;
  const abs = neg ? -value : value;
  const unit = 10n ** BigInt(places);
  let text = (abs / unit).toString();
  const frac = abs % unit;
  if (frac) text += "." + frac.toString().padStart(places, "0").replace(/0+$/, "");
  return (neg ? "-" : "") + text;
}

const money = (sub) => ({ amount_micros: decimalText(sub, 6), amount: decimalText(sub, 12) });
const big = (v) => BigInt(v);

/** The invoice lines and total of a statement's bundles and corrections (verified, in chain
 *  order); throws if the tier lines do not give the window's exact amount. */
export function invoiceOf(bundles, totalMicros) {
  const tiers = new Map();
  let exact = 0n;
  let rounded = 0n;
  const clamps = [];
  const modes = new Set();
  for (const b of bundles) {
    const correction = correctionKind(b) !== null;
    const source = correction ? b.original : b;
    const tariff = source.tariff_snapshot;
    const meter = source.meter_event;
    const w = b.billing.window;
    const version = tariff.tariff_version;
    const sign = correction ? -1n : 1n;
    for (const name of Object.keys(tariff.dimensions).sort()) {
      const a = big(w.before.units[name]);
      const z = big(w.after.units[name]);
      const [from, to] = correction ? [z, a] : [a, z];
      let lo = 0n;
      tariff.dimensions[name].tiers.forEach((tier, t) => {
        const price = encodePrice(tier.unit_price_micros, `tariff_snapshot.dimensions.${name}.tiers[${t}]`);
        const hi = tier.up_to === null ? null : big(tier.up_to);
        const top = hi ?? U64;
        const lower = from > lo ? from : lo;
        const upper = to < top ? to : top;
        const n = upper > lower ? upper - lower : 0n;
        if (n > 0n) {
          const key = JSON.stringify([version, name, t]);
          if (!tiers.has(key)) tiers.set(key, { version, name, t, lo, hi, price, units: 0n });
          tiers.get(key).units += sign * n;
          exact += sign * n * price;
        }
        lo = hi ?? U64;
      });
    }
    const mode = ROUNDING_MODES.get(tariff.rounding_mode);
    modes.add(tariff.rounding_mode);
    const delta = roundMicros(big(w.after.amount), mode) - roundMicros(big(w.before.amount), mode);
    rounded += delta;
    if (correction) {
      const charge = -big(b.billing.credit_micros);
      if (charge !== delta) { // the credit is capped by the window's charge
        const id = b.correction.correction_id;
        clamps.push({
          kind: "clamp",
          description: `credit of ${id} capped by the window's charge: credited ${-charge}, the tariff gives ${-delta}`,
          event_id: id,
          seq: w.seq,
          ...money((charge - delta) * SCALE),
        });
      }
      continue;
    }
    const charge = big(b.billing.expected_charge_micros);
    if (charge !== delta) {
      const bound = charge > delta ? "minimum" : "maximum";
      clamps.push({
        kind: "clamp",
        description: `${bound} charge per event applied to ${meter.event_id} (seq ${w.seq}): charged ${charge}, the tariff gives ${delta}`,
        event_id: meter.event_id,
        seq: w.seq,
        ...money((charge - delta) * SCALE),
      });
    }
  }
  const lastAmount = big(bundles[bundles.length - 1].billing.window.after.amount);
  if (exact !== lastAmount) throw new Error(`the tier lines give ${exact} but the window's exact amount is ${lastAmount}`);
  const order = [...tiers.values()].filter((x) => x.units !== 0n).sort((x, y) =>
    x.version < y.version ? -1 : x.version > y.version ? 1 : x.name < y.name ? -1 : x.name > y.name ? 1 : x.t - y.t,
  );
  const lines = order.map((x) => ({
    kind: "usage",
    tariff_version: x.version,
    dimension: x.name,
    tier: x.t + 1,
    tier_from: x.lo.toString(),
    tier_to: x.hi === null ? null : x.hi.toString(),
    units: x.units.toString(),
    unit_price_micros: decimalText(x.price, 6),
    free: x.price === 0n,
    ...money(x.units * x.price),
  }));
  const rounding = rounded * SCALE - exact;
  if (rounding !== 0n) {
    lines.push({
      kind: "rounding",
      description: `rounding of the window's exact total to whole micros (${[...modes].sort().join(", ")})`,
      ...money(rounding),
    });
  }
  lines.push(...clamps);
  return { total_micros: totalMicros.toString(), total: decimalText(big(totalMicros), 6), lines };
}
