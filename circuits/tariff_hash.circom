pragma circom 2.1.0;

// TariffHash: the Poseidon commitment to one pinned tariff snapshot (docs/protocol.md §3).
//
// Proves: out = Poseidon8(tariff_id, tariff_version, tariff_class, price_scaled,
//                         min_charge_micros, max_charge_micros, rounding_mode, currency).
// Public signals: none; the hash feeds the commitment and the tariff_key in BillingBinding.
// NOTE: inputs are field elements encoded as in docs/protocol.md. The range and set checks on the numeric fields
// (price, min, max, rounding mode, class) are BillingBinding's job, not this template's.

include "circomlib/circuits/poseidon.circom";

template TariffHash() {
    signal input tariff_id;
    signal input tariff_version;
    signal input tariff_class;
    signal input price_scaled;
    signal input min_charge_micros;
    signal input max_charge_micros;
    signal input rounding_mode;
    signal input currency;
    signal output out;

    component h = Poseidon(8);
    h.inputs[0] <== tariff_id;
    h.inputs[1] <== tariff_version;
    h.inputs[2] <== tariff_class;
    h.inputs[3] <== price_scaled;
    h.inputs[4] <== min_charge_micros;
    h.inputs[5] <== max_charge_micros;
    h.inputs[6] <== rounding_mode;
    h.inputs[7] <== currency;
    out <== h.out;
}
