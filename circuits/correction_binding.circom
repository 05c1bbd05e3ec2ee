pragma circom 2.1.0;

// CorrectionBinding, binding version bn128-poseidon8-v2c (docs/protocol-corrections.md).
//
// Proves: a correction that takes `units` back from one earlier event of a metered window
// (binding bn128-poseidon8-v2), priced backwards from the window's state before it by the
// original event's tariff (docs/protocol-corrections.md §2): with a_d = units_before[d] and
// b_d = a_d - units[d],
//   raw          = Σ_d F_d(a_d) - F_d(b_d)                        (exact, >= 0)
//   amount_after = amount_before - raw                             (>= 0, < 2^130)
//   credit       = min(R(amount_before) - R(amount_after), charge_before)
//   state after  = (seq + 1, b, amount_after, charge_before - credit)
// and that the original's commitment (binding v2's MeteredCommitment) opens to units that
// bound the correction's, units[d] <= units_original[d], under the same tariff (tariff_key).
// Public signals (outputs of main, in this order; circuits/circuits.json `pubs` says the same):
//   commitment         CorrectionCommitment: binds the correction record and its credit
//   credit             the credit in micros (moves money back, so it is public)
//   tariff_key         MeteredTariffKey of the original's tariff
//   nullifier          Poseidon4(tenant_id, event_id, account_salt, DOMAIN_TAG_V2C): an event
//                      is corrected once, off chain and on chain
//   tenant_key         Poseidon(tenant_id, account_salt), as in v1 and v2: the same account
//   prev_state_key     WindowStateKey of the state before the correction
//   state_key          WindowStateKey of the state after it
//   corrects           the original event's v2 commitment
//   corrects_nullifier the original event's nullifier (Poseidon3, as in v1 and v2): which
//                      settled charge this correction credits
// Range checks: every 64-bit input (timestamp, original's units and charge, prices, bounds,
// min, max, correction units, units before and after, seq before and after, charge before
// and after) by decomposition, both amounts to 130 bits; tariff_class = 2; rounding_mode in
// {0, 1, 2}; tier bounds valid (TierBounds), as binding v2 proves them.
// NOTE: callers encode inputs per docs/protocol-v2.md and docs/protocol-corrections.md;
// strings and salts are arbitrary field elements. The state after is computed, never an input.

include "./range.circom";
include "./keys.circom";
include "./metered_tiers.circom";
include "./metered_window.circom";
include "./metered_hashes.circom";

function DOMAIN_TAG_V2C() {
    // int(SHA-256(utf8("bn128-poseidon8-v2c"))) mod r
    return 21358820308625066292851306689917779312044958112904500218268747747056073296156;
}

// out = Poseidon7(DOMAIN_TAG_V2C, correction_id, reason, pack(units[0], units[1], units[2]),
//                 pack(units[3], credit), corrects, salt)
// NOTE: callers range-check units and credit to < 2^64.
template CorrectionCommitment() {
    signal input correction_id;
    signal input reason;
    signal input units[4];
    signal input credit;
    signal input corrects;
    signal input salt;
    signal output out;

    component h = Poseidon(7);
    h.inputs[0] <== DOMAIN_TAG_V2C();
    h.inputs[1] <== correction_id;
    h.inputs[2] <== reason;
    h.inputs[3] <== units[0] + units[1] * 2**64 + units[2] * 2**128;
    h.inputs[4] <== units[3] + credit * 2**64;
    h.inputs[5] <== corrects;
    h.inputs[6] <== salt;
    out <== h.out;
}

// out = Poseidon4(tenant_id, event_id, account_salt, DOMAIN_TAG_V2C): never equal to the event's
// own nullifier (Poseidon3), so a correction spends its own nullifier and the event keeps its.
template CorrectionNullifier() {
    signal input tenant_id;
    signal input event_id;
    signal input account_salt;
    signal output out;

    component h = Poseidon(4);
    h.inputs[0] <== tenant_id;
    h.inputs[1] <== event_id;
    h.inputs[2] <== account_salt;
    h.inputs[3] <== DOMAIN_TAG_V2C();
    out <== h.out;
}

template CorrectionBinding() {
    var D = 4;             // usage dimensions (binding v2's shape)
    var T = 4;             // tiers per dimension
    var INT_BITS = 64;
    var AMOUNT_BITS = 130;
    var METERED = 2;

    // the original event (opens `corrects`)
    signal input event_id;
    signal input event_timestamp;
    signal input tenant_id;
    signal input api_key_id;
    signal input endpoint;
    signal input units_original[D];
    signal input charge_original;
    signal input contract_version;
    signal input billing_window_id;
    signal input salt_original;
    // its tariff snapshot
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
    // the correction
    signal input correction_id;
    signal input reason;
    signal input units[D];
    signal input salt;
    // window state before the correction
    signal input seq_before;
    signal input units_before[D];
    signal input amount_before;
    signal input charge_before;
    signal input account_salt;

    signal output commitment;
    signal output credit;
    signal output tariff_key;
    signal output nullifier;
    signal output tenant_key;
    signal output prev_state_key;
    signal output state_key;
    signal output corrects;
    signal output corrects_nullifier;

    // --- the original's tariff and event: input validity ---
    tariff_class === METERED;
    component word64[4];
    for (var i = 0; i < 4; i++) {
        word64[i] = RangeCheck(INT_BITS);
    }
    word64[0].in <== event_timestamp;
    word64[1].in <== charge_original;
    word64[2].in <== min_charge_micros;
    word64[3].in <== max_charge_micros;
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

    // --- the window, backwards: b = a - units, units <= units_original ---
    signal seq_after;
    seq_after <== seq_before + 1;
    component seqRange[2];
    seqRange[0] = RangeCheck(INT_BITS);
    seqRange[0].in <== seq_before;
    seqRange[1] = RangeCheck(INT_BITS);
    seqRange[1].in <== seq_after;

    signal units_after[D];
    component unitRange[D][4];
    component bounded[D];
    component dims[D];
    var raw = 0;
    for (var d = 0; d < D; d++) {
        units_after[d] <== units_before[d] - units[d];
        for (var k = 0; k < 4; k++) {
            unitRange[d][k] = RangeCheck(INT_BITS);
        }
        unitRange[d][0].in <== units_before[d];
        unitRange[d][1].in <== units[d];
        unitRange[d][2].in <== units_after[d];  // a - units wraps to about r unless units <= a
        unitRange[d][3].in <== units_original[d];
        bounded[d] = AssertLessEq(INT_BITS);
        bounded[d].a <== units[d];
        bounded[d].b <== units_original[d];

        dims[d] = DimensionCost(T);
        dims[d].before <== units_after[d];
        dims[d].after <== units_before[d];
        for (var t = 0; t < T; t++) {
            dims[d].price[t] <== price_scaled[d][t];
        }
        for (var t = 0; t < T - 1; t++) {
            dims[d].up_to[t] <== up_to[d][t];
        }
        raw += dims[d].out;
    }

    signal amount_after;
    amount_after <== amount_before - raw;
    component amountRange[2];
    amountRange[0] = RangeCheck(AMOUNT_BITS);
    amountRange[0].in <== amount_before;
    amountRange[1] = RangeCheck(AMOUNT_BITS);  // amount_before - raw wraps unless raw <= it
    amountRange[1].in <== amount_after;

    // credit = clamp(R(amount_before) - R(amount_after), 0, charge_before): WindowCharge read
    // backwards (amount_after <= amount_before), its lower clamp 0 and its upper the charge
    component chargeRange[2];
    chargeRange[0] = RangeCheck(INT_BITS);
    chargeRange[0].in <== charge_before;
    component windowCredit = WindowCharge(AMOUNT_BITS);
    windowCredit.before <== amount_after;
    windowCredit.after <== amount_before;
    windowCredit.rounding_mode <== rounding_mode;
    windowCredit.lo <== 0;
    windowCredit.hi <== charge_before;
    credit <== windowCredit.charge;

    signal charge_after;
    charge_after <== charge_before - credit;
    chargeRange[1] = RangeCheck(INT_BITS);
    chargeRange[1].in <== charge_after;

    // --- the original: tariff key, commitment, nullifier ---
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

    component original = MeteredCommitment();
    original.event_id <== event_id;
    original.event_timestamp <== event_timestamp;
    original.tenant_id <== tenant_id;
    original.api_key_id <== api_key_id;
    original.endpoint <== endpoint;
    original.contract_version <== contract_version;
    original.billing_window_id <== billing_window_id;
    for (var d = 0; d < D; d++) {
        original.units[d] <== units_original[d];
    }
    original.charge <== charge_original;
    original.tariff_key <== tariff_key;
    original.salt <== salt_original;
    corrects <== original.out;

    component originalNf = Nullifier();
    originalNf.tenant_id <== tenant_id;
    originalNf.event_id <== event_id;
    originalNf.account_salt <== account_salt;
    corrects_nullifier <== originalNf.out;

    // --- the correction: its commitment, nullifier, tenant and state keys ---
    component com = CorrectionCommitment();
    com.correction_id <== correction_id;
    com.reason <== reason;
    for (var d = 0; d < D; d++) {
        com.units[d] <== units[d];
    }
    com.credit <== credit;
    com.corrects <== corrects;
    com.salt <== salt;
    commitment <== com.out;

    component nf = CorrectionNullifier();
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
