pragma circom 2.1.0;

// MeteredBinding, binding version bn128-poseidon8-v2 (docs/protocol-v2.md).
//
// Proves: for a metered tariff of D = 4 usage dimensions × T = 4 graduated tiers (unused ones
// padded: price 0, bounds UNBOUNDED), an event's usage and the billing window's state before
// it, that
//   raw          = Σ_d Σ_t price[d][t] × |[a_d, a_d + units[d]) ∩ tier[d][t]|  (exact)
//   amount_after = amount_before + raw                           (< 2^130)
//   charge       = clamp(R(amount_after) - R(amount_before), min, max)
//   state after  = (seq + 1, units_before + units, amount_after, charge_before + charge)
// where a_d = units_before[d] and R is the rounding of x / 10^6 by rounding_mode.
// Public signals (outputs of main, in this order; circuits/circuits.json `pubs` says the same):
//   commitment      MeteredCommitment: binds the meter event, the tariff key and the charge
//   charge          the clamped charge in micros (moves money, so it is public)
//   tariff_key      MeteredTariffKey: the salted tariff the tenant agreed to
//   nullifier       Poseidon(tenant_id, event_id, account_salt), as in v1: one settlement/event
//   tenant_key      Poseidon(tenant_id, account_salt), as in v1: the same account on chain
//   prev_state_key  WindowStateKey of the state before the event
//   state_key       WindowStateKey of the state after it
// Range checks: event_timestamp, units, units before and after, prices, up_to, min, max, seq
// before and after, charge before and after < 2^64; amount before and after < 2^130;
// min <= max; rounding_mode ∈ {0, 1, 2}; tariff_class = 2 (metered); tier bounds valid.
// NOTE: callers encode inputs per docs/protocol-v2.md; strings and salts are arbitrary field
// elements. The state after is computed here, never taken as an input.

include "./range.circom";
include "./keys.circom";
include "./metered_tiers.circom";
include "./metered_window.circom";
include "./metered_hashes.circom";

template MeteredBinding() {
    var D = 4;             // usage dimensions
    var T = 4;             // tiers per dimension
    var INT_BITS = 64;     // units, prices, bounds, min/max, seq, cumulative charge
    var AMOUNT_BITS = 130; // the window's cumulative exact amount (10^-12 micros)
    var METERED = 2;       // tariff_class of this binding version

    // meter event
    signal input event_id;
    signal input event_timestamp;
    signal input tenant_id;
    signal input api_key_id;
    signal input endpoint;
    signal input units[D];
    signal input contract_version;
    signal input billing_window_id;
    // tariff snapshot
    signal input tariff_id;
    signal input tariff_version;
    signal input tariff_class;
    signal input dimension_names;
    signal input price_scaled[D][T];
    signal input up_to[D][T - 1];
    signal input min_charge_micros;
    signal input max_charge_micros;
    signal input rounding_mode;
    signal input currency;
    // window state before the event
    signal input seq_before;
    signal input units_before[D];
    signal input amount_before;
    signal input charge_before;
    // blinding
    signal input salt;
    signal input account_salt;

    signal output commitment;
    signal output charge;
    signal output tariff_key;
    signal output nullifier;
    signal output tenant_key;
    signal output prev_state_key;
    signal output state_key;

    // --- input validity ---
    tariff_class === METERED;
    component tsRange = RangeCheck(INT_BITS);
    tsRange.in <== event_timestamp;
    component minRange = RangeCheck(INT_BITS);
    minRange.in <== min_charge_micros;
    component maxRange = RangeCheck(INT_BITS);
    maxRange.in <== max_charge_micros;
    component minLeMax = AssertLessEq(INT_BITS);
    minLeMax.a <== min_charge_micros;
    minLeMax.b <== max_charge_micros;

    component priceRange[D][T];
    component bounds[D];
    for (var d = 0; d < D; d++) {
        for (var t = 0; t < T; t++) {
            priceRange[d][t] = RangeCheck(INT_BITS);
            priceRange[d][t].in <== price_scaled[d][t];
        }
        bounds[d] = TierBounds(T);
        for (var t = 0; t < T - 1; t++) {
            bounds[d].up_to[t] <== up_to[d][t];
        }
    }

    // --- window state transition ---
    signal seq_after;
    seq_after <== seq_before + 1;
    component seqRange[2];
    seqRange[0] = RangeCheck(INT_BITS);
    seqRange[0].in <== seq_before;
    seqRange[1] = RangeCheck(INT_BITS);
    seqRange[1].in <== seq_after;

    signal units_after[D];
    component unitRange[D][3];
    component dims[D];
    var raw = 0;
    for (var d = 0; d < D; d++) {
        units_after[d] <== units_before[d] + units[d];
        for (var k = 0; k < 3; k++) {
            unitRange[d][k] = RangeCheck(INT_BITS);
        }
        unitRange[d][0].in <== units_before[d];
        unitRange[d][1].in <== units[d];
        unitRange[d][2].in <== units_after[d];

        dims[d] = DimensionCost(T);
        dims[d].before <== units_before[d];
        dims[d].after <== units_after[d];
        for (var t = 0; t < T; t++) {
            dims[d].price[t] <== price_scaled[d][t];
        }
        for (var t = 0; t < T - 1; t++) {
            dims[d].up_to[t] <== up_to[d][t];
        }
        raw += dims[d].out;
    }

    signal amount_after;
    amount_after <== amount_before + raw;
    component amountRange[2];
    amountRange[0] = RangeCheck(AMOUNT_BITS);
    amountRange[0].in <== amount_before;
    amountRange[1] = RangeCheck(AMOUNT_BITS);
    amountRange[1].in <== amount_after;

    component windowCharge = WindowCharge(AMOUNT_BITS);
    windowCharge.before <== amount_before;
    windowCharge.after <== amount_after;
    windowCharge.rounding_mode <== rounding_mode;
    windowCharge.lo <== min_charge_micros;
    windowCharge.hi <== max_charge_micros;
    charge <== windowCharge.charge;

    signal charge_after;
    charge_after <== charge_before + charge;
    component chargeRange[2];
    chargeRange[0] = RangeCheck(INT_BITS);
    chargeRange[0].in <== charge_before;
    chargeRange[1] = RangeCheck(INT_BITS);
    chargeRange[1].in <== charge_after;

    // --- commitments and keys ---
    component tk = MeteredTariffKey();
    tk.tariff_id <== tariff_id;
    tk.tariff_version <== tariff_version;
    tk.currency <== currency;
    tk.dimension_names <== dimension_names;
    tk.words[0] <== tariff_class;
    tk.words[1] <== rounding_mode;
    tk.words[2] <== min_charge_micros;
    tk.words[3] <== max_charge_micros;
    for (var d = 0; d < D; d++) {
        for (var t = 0; t < T; t++) {
            tk.words[4 + d * (2 * T - 1) + t] <== price_scaled[d][t];
        }
        for (var t = 0; t < T - 1; t++) {
            tk.words[4 + d * (2 * T - 1) + T + t] <== up_to[d][t];
        }
    }
    tk.account_salt <== account_salt;
    tariff_key <== tk.out;

    component com = MeteredCommitment();
    com.event_id <== event_id;
    com.event_timestamp <== event_timestamp;
    com.tenant_id <== tenant_id;
    com.api_key_id <== api_key_id;
    com.endpoint <== endpoint;
    com.contract_version <== contract_version;
    com.billing_window_id <== billing_window_id;
    for (var d = 0; d < D; d++) {
        com.units[d] <== units[d];
    }
    com.charge <== charge;
    com.tariff_key <== tariff_key;
    com.salt <== salt;
    commitment <== com.out;

    component nf = Nullifier();
    nf.tenant_id <== tenant_id;
    nf.event_id <== event_id;
    nf.account_salt <== account_salt;
    nullifier <== nf.out;

    component tn = TenantKey();
    tn.tenant_id <== tenant_id;
    tn.account_salt <== account_salt;
    tenant_key <== tn.out;

    component state[2];
    for (var i = 0; i < 2; i++) {
        state[i] = WindowStateKey();
        state[i].tenant_id <== tenant_id;
        state[i].billing_window_id <== billing_window_id;
        state[i].tariff_id <== tariff_id;
        state[i].account_salt <== account_salt;
    }
    state[0].seq <== seq_before;
    state[0].charge <== charge_before;
    state[0].amount <== amount_before;
    state[1].seq <== seq_after;
    state[1].charge <== charge_after;
    state[1].amount <== amount_after;
    for (var d = 0; d < D; d++) {
        state[0].units[d] <== units_before[d];
        state[1].units[d] <== units_after[d];
    }
    prev_state_key <== state[0].out;
    state_key <== state[1].out;
}
