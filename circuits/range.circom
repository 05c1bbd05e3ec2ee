pragma circom 2.1.0;

// Range-check helpers used before any comparison.
//
// Proves: `in` fits in n bits (RangeCheck), and a ≤ b for two values already known to fit in
// n bits (AssertLessEq).
// Public signals: none (helpers).
// NOTE: AssertLessEq(n) is sound only if the caller has range-checked both inputs to n bits;
// circomlib's LessThan(n) gives wrong answers on wider inputs (it reads bit n of a + 2^n - b).

include "circomlib/circuits/bitify.circom";
include "circomlib/circuits/comparators.circom";

// in < 2^n, by decomposition into n boolean-constrained bits.
template RangeCheck(n) {
    assert(n >= 1 && n <= 252);  // below 253 bits the decomposition cannot alias mod r
    signal input in;

    component bits = Num2Bits(n);
    bits.in <== in;
}

// a ≤ b, for a, b < 2^n.
template AssertLessEq(n) {
    assert(n >= 1 && n <= 252);
    signal input a;
    signal input b;

    component le = LessEqThan(n);
    le.in[0] <== a;
    le.in[1] <== b;
    le.out === 1;
}
