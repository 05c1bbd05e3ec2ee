pragma circom 2.1.0;

// MeterHash: the Poseidon commitment to one meter event (docs/protocol.md §3).
//
// Proves: out = Poseidon8(event_id, event_timestamp, tenant_id, api_key_id, endpoint,
//                         usage_units, contract_version, billing_window_id).
// Public signals: none; the hash only feeds the commitment in BillingBinding.
// NOTE: inputs are field elements already encoded as in docs/protocol.md (strings as SHA-256 mod r,
// timestamps as integer milliseconds). This template range-checks nothing: BillingBinding
// range-checks event_timestamp and usage_units, the strings are arbitrary field elements.

include "circomlib/circuits/poseidon.circom";

template MeterHash() {
    signal input event_id;
    signal input event_timestamp;
    signal input tenant_id;
    signal input api_key_id;
    signal input endpoint;
    signal input usage_units;
    signal input contract_version;
    signal input billing_window_id;
    signal output out;

    component h = Poseidon(8);
    h.inputs[0] <== event_id;
    h.inputs[1] <== event_timestamp;
    h.inputs[2] <== tenant_id;
    h.inputs[3] <== api_key_id;
    h.inputs[4] <== endpoint;
    h.inputs[5] <== usage_units;
    h.inputs[6] <== contract_version;
    h.inputs[7] <== billing_window_id;
    out <== h.out;
}
