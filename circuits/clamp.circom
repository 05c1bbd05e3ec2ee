pragma circom 2.1.0;

// Clamp(n): out = min(max(in, lo), hi).
//
// Proves: out is `in` clamped into [lo, hi], using two n-bit comparisons.
// Public signals: none (BillingBinding exposes the clamped value as `charge`).
// NOTE: sound only if the caller guarantees in, lo, hi < 2^n (LessThan(n) misbehaves on wider
// inputs) and lo ≤ hi (otherwise the result is hi, which is below lo).

include "circomlib/circuits/comparators.circom";

template Clamp(n) {
    assert(n >= 1 && n <= 252);
    signal input in;
    signal input lo;
    signal input hi;
    signal output out;

    // raised = max(in, lo)
    component below = LessThan(n);
    below.in[0] <== in;
    below.in[1] <== lo;
    signal raised;
    raised <== in + below.out * (lo - in);

    // out = min(raised, hi); raised < 2^n because both in and lo are
    component above = LessThan(n);
    above.in[0] <== hi;
    above.in[1] <== raised;
    out <== raised + above.out * (hi - raised);
}
