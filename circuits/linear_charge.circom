pragma circom 2.1.0;

// LinearCharge: the usage_linear tariff before clamping (docs/protocol.md §3).
//
// Proves: raw = usage_units × price_scaled exactly; q, rem = divmod(raw, 10^6) with
// rem < 10^6 and q < 2^109; rounded = q + [mode = ceil and rem > 0]
//                                        + [mode = half_up and rem ≥ 500000];
// rounding_mode ∈ {0 floor, 1 ceil, 2 half_up} (one-hot flags that sum to 1).
// Public signals: none (the clamped result is BillingBinding's `charge`).
// NOTE: the caller must range-check usage_units and price_scaled to < 2^64. Then raw < 2^128,
// q < 2^128 / 10^6 < 2^109 and q·10^6 + rem < 2^129 ≪ r, so the divmod cannot wrap mod r and
// is unique. `rounded` ≤ q + 1 < 2^110 (ceil and half_up are exclusive), so a caller may feed
// it to 110-bit comparators.

include "circomlib/circuits/bitify.circom";
include "circomlib/circuits/comparators.circom";
include "./range.circom";

template LinearCharge() {
    signal input usage_units;
    signal input price_scaled;
    signal input rounding_mode;
    signal output rounded;

    var SCALE = 1000000;  // price_scaled carries 6 decimals of a micro (docs/protocol.md §2)
    var Q_BITS = 109;     // ceil(log2((2^64-1)^2 / 10^6)) = 109

    // rounding mode: exactly one of the three flags is set, and it names the mode
    component isFloor = IsEqual();
    isFloor.in[0] <== rounding_mode;
    isFloor.in[1] <== 0;
    component isCeil = IsEqual();
    isCeil.in[0] <== rounding_mode;
    isCeil.in[1] <== 1;
    component isHalfUp = IsEqual();
    isHalfUp.in[0] <== rounding_mode;
    isHalfUp.in[1] <== 2;
    isFloor.out + isCeil.out + isHalfUp.out === 1;

    signal raw;
    raw <== usage_units * price_scaled;

    signal q;
    signal rem;
    q <-- raw \ SCALE;
    rem <-- raw % SCALE;
    q * SCALE + rem === raw;

    component qRange = RangeCheck(Q_BITS);
    qRange.in <== q;
    component remBits = RangeCheck(20);  // 10^6 < 2^20
    remBits.in <== rem;
    component remBelow = LessThan(20);
    remBelow.in[0] <== rem;
    remBelow.in[1] <== SCALE;
    remBelow.out === 1;

    // [rem > 0] and [rem >= 500000], rem already known to fit 20 bits
    component remZero = IsZero();
    remZero.in <== rem;
    component remHalf = GreaterEqThan(20);
    remHalf.in[0] <== rem;
    remHalf.in[1] <== SCALE \ 2;

    signal ceilBump;
    ceilBump <== isCeil.out * (1 - remZero.out);
    signal halfBump;
    halfBump <== isHalfUp.out * remHalf.out;

    rounded <== q + ceilBump + halfBump;
}
