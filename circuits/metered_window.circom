pragma circom 2.1.0;

// Rounding on the billing window (binding bn128-poseidon8-v2, docs/protocol-v2.md).
//
// RoundingMode()  proves mode ∈ {0 floor, 1 ceil, 2 half_up} with two constraints
//                 (mode·(mode-1)·(mode-2) = 0) and outputs the ceil and half_up flags.
// RoundMicros(n)  proves out = R(x): q, rem = divmod(x, 10^6) (rem < 10^6, q < 2^(n-19)),
//                 out = q + [ceil and rem > 0] + [half_up and rem >= 500000].
// WindowCharge(n) proves charge = clamp(R(after) - R(before), lo, hi) for the window's
//                 cumulative exact amounts before and after the event.
// Public signals: none (MeteredBinding exposes the clamped charge).
// NOTE: callers range-check x (and before, after) to < 2^n, guarantee before <= after (the
// event's amount is a sum of non-negative tier costs), and range-check lo <= hi < 2^64.
// Then R(after) - R(before) ∈ [0, 2^(n-19) + 1], inside the (n-18)-bit clamp.

include "circomlib/circuits/comparators.circom";
include "./range.circom";
include "./clamp.circom";

template RoundingMode() {
    signal input mode;
    signal output isCeil;
    signal output isHalfUp;

    signal square;
    square <== mode * mode;
    (square - mode) * (mode - 2) === 0;  // mode ∈ {0, 1, 2}
    isCeil <== 2 * mode - square;        // 1 only for mode 1
    isHalfUp <== (square - mode) / 2;    // 1 only for mode 2
}

template RoundMicros(n) {
    assert(n >= 20 && n <= 200);
    signal input x;
    signal input isCeil;
    signal input isHalfUp;
    signal output out;

    var SCALE = 1000000;  // amounts carry 6 decimals of a micro (price_scaled)
    signal q;
    signal rem;
    q <-- x \ SCALE;
    rem <-- x % SCALE;
    q * SCALE + rem === x;

    // 10^6 > 2^19, so x < 2^n gives q < 2^(n-19); with rem < 10^6 the split is unique
    component qRange = RangeCheck(n - 19);
    qRange.in <== q;
    component remRange = RangeCheck(20);
    remRange.in <== rem;
    component remBelow = LessThan(20);
    remBelow.in[0] <== rem;
    remBelow.in[1] <== SCALE;
    remBelow.out === 1;

    component remZero = IsZero();
    remZero.in <== rem;
    component remHalf = GreaterEqThan(20);
    remHalf.in[0] <== rem;
    remHalf.in[1] <== SCALE \ 2;

    signal ceilBump;
    ceilBump <== isCeil * (1 - remZero.out);
    signal halfBump;
    halfBump <== isHalfUp * remHalf.out;
    out <== q + ceilBump + halfBump;
}

template WindowCharge(n) {
    assert(n >= 20 && n <= 200);
    signal input before;
    signal input after;
    signal input rounding_mode;
    signal input lo;
    signal input hi;
    signal output charge;

    component mode = RoundingMode();
    mode.mode <== rounding_mode;

    component r[2];
    for (var i = 0; i < 2; i++) {
        r[i] = RoundMicros(n);
        r[i].isCeil <== mode.isCeil;
        r[i].isHalfUp <== mode.isHalfUp;
    }
    r[0].x <== before;
    r[1].x <== after;

    component clamp = Clamp(n - 18);
    clamp.in <== r[1].out - r[0].out;
    clamp.lo <== lo;
    clamp.hi <== hi;
    charge <== clamp.out;
}
