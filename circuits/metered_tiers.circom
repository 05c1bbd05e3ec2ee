pragma circom 2.1.0;

// Graduated tiers of one usage dimension (binding bn128-poseidon8-v2, docs/protocol-v2.md).
//
// A dimension has T tiers; tier t covers cumulative units [lo_t, hi_t) with lo_0 = 0,
// lo_t = up_to[t-1], hi_t = up_to[t] and hi_{T-1} = 2^64 (the last tier is unbounded).
// UNBOUNDED = 2^64 - 1 in up_to marks "no further bound": since every cumulative value is
// < 2^64, min(x, 2^64 - 1) = x, so a tier that starts at 2^64 - 1 can never be reached and
// unused (padding) tiers are exactly the ones whose lower bound is UNBOUNDED.
//
// TierBounds(T)    proves the bounds are valid: each < 2^64, up_to[0] >= 1, and strictly
//                  increasing until the first UNBOUNDED, after which they all are UNBOUNDED.
// TierSelect(T)    proves `cost` = F(x), the cost of units [0, x) under the tiers, by one
//                  tier index (one-hot, pinned by lo <= x < hi) instead of T-1 comparisons.
// DimensionCost(T) proves `out` = F(a + units) - F(a) = Σ_t price_t × |[a, a+units) ∩ tier_t|.
// Public signals: none (MeteredBinding sums the dimensions into the window's amount).
// NOTE: callers range-check x, a, a + units and every price to < 2^64 (then F(x) < 2^128);
// TierSelect and DimensionCost rely on TierBounds having run on the same up_to.

include "circomlib/circuits/comparators.circom";
include "./range.circom";

function UNBOUNDED() {
    return 18446744073709551615;  // 2^64 - 1
}

template TierBounds(T) {
    assert(T >= 2 && T <= 16);
    signal input up_to[T - 1];

    component bounds[T - 1];
    for (var i = 0; i < T - 1; i++) {
        bounds[i] = RangeCheck(64);
        bounds[i].in <== up_to[i];
    }

    // up_to[0] != 0: the first tier is not empty
    signal firstInv;
    firstInv <-- up_to[0] != 0 ? 1 / up_to[0] : 0;
    firstInv * up_to[0] === 1;

    // up_to[i+1] - up_to[i] - 1 + [up_to[i] = UNBOUNDED] >= 0, i.e. strictly increasing,
    // or both UNBOUNDED (up_to[i+1] >= 2^64 - 1 and < 2^64).
    component isOpen[T - 2];
    component step[T - 2];
    for (var i = 0; i < T - 2; i++) {
        isOpen[i] = IsEqual();
        isOpen[i].in[0] <== up_to[i];
        isOpen[i].in[1] <== UNBOUNDED();
        step[i] = RangeCheck(64);
        step[i].in <== up_to[i + 1] - up_to[i] - 1 + isOpen[i].out;
    }
}

template TierSelect(T) {
    assert(T >= 2 && T <= 16);
    signal input x;
    signal input lo[T];
    signal input hi[T];
    signal input price[T];
    signal input base[T];  // F(lo_t): the cost of every tier below t
    signal output cost;

    // hint: the one tier whose [lo, hi) holds x (the tiers partition [0, 2^64))
    signal sel[T];
    var total = 0;
    for (var t = 0; t < T; t++) {
        sel[t] <-- (lo[t] <= x && x < hi[t]) ? 1 : 0;
        sel[t] * (sel[t] - 1) === 0;
        total += sel[t];
    }
    total === 1;

    signal loTerm[T];
    signal hiTerm[T];
    signal priceTerm[T];
    signal baseTerm[T];
    var loSel = 0;
    var hiSel = 0;
    var priceSel = 0;
    var baseSel = 0;
    for (var t = 0; t < T; t++) {
        loTerm[t] <== sel[t] * lo[t];
        hiTerm[t] <== sel[t] * hi[t];
        priceTerm[t] <== sel[t] * price[t];
        baseTerm[t] <== sel[t] * base[t];
        loSel += loTerm[t];
        hiSel += hiTerm[t];
        priceSel += priceTerm[t];
        baseSel += baseTerm[t];
    }
    // lo <= x < hi for the selected tier; both differences are below 2^64 when true and
    // wrap to about r when false, so a 64-bit decomposition decides them soundly
    component above = RangeCheck(64);
    above.in <== x - loSel;
    component below = RangeCheck(64);
    below.in <== hiSel - 1 - x;

    cost <== baseSel + priceSel * (x - loSel);
}

template DimensionCost(T) {
    assert(T >= 2 && T <= 16);
    signal input before;  // cumulative units of this dimension before the event
    signal input after;   // before + this event's units
    signal input up_to[T - 1];
    signal input price[T];
    signal output out;

    signal lo[T];
    signal hi[T];
    lo[0] <== 0;
    for (var t = 1; t < T; t++) {
        lo[t] <== up_to[t - 1];
    }
    for (var t = 0; t < T - 1; t++) {
        hi[t] <== up_to[t];
    }
    hi[T - 1] <== 2**64;

    // base[t] = Σ_{s<t} price_s × (hi_s - lo_s): the cost of the tiers wholly below tier t
    signal base[T];
    signal width[T - 1];
    base[0] <== 0;
    for (var t = 1; t < T; t++) {
        width[t - 1] <== price[t - 1] * (hi[t - 1] - lo[t - 1]);
        base[t] <== base[t - 1] + width[t - 1];
    }

    component at[2];
    for (var i = 0; i < 2; i++) {
        at[i] = TierSelect(T);
        for (var t = 0; t < T; t++) {
            at[i].lo[t] <== lo[t];
            at[i].hi[t] <== hi[t];
            at[i].price[t] <== price[t];
            at[i].base[t] <== base[t];
        }
    }
    at[0].x <== before;
    at[1].x <== after;
    out <== at[1].cost - at[0].cost;
}
