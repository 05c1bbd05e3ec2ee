pragma circom 2.1.0;

// Commitment: the public commitment that binds meter, tariff and charge (docs/protocol.md §3).
//
// Proves: out = Poseidon8(DOMAIN_TAG, meter_hash, tariff_hash, charge, salt, 0, 0, 0).
// Public signals: none here; BillingBinding exposes `out` as `commitment`.
// NOTE: salt must be a fresh uniformly random field element per bundle (hiding); the caller
// range-checks charge. DOMAIN_TAG separates this binding version from any other use of
// Poseidon8: it is the string rule of docs/protocol.md applied to "bn128-poseidon8-v1",
//   int(SHA-256(utf8("bn128-poseidon8-v1"))) mod r
//   python3 -c 'import hashlib; r=21888242871839275222246405745257275088548364400416034343698204186575808495617; print(int.from_bytes(hashlib.sha256(b"bn128-poseidon8-v1").digest(), "big") % r)'

include "circomlib/circuits/poseidon.circom";

function DOMAIN_TAG() {
    return 10387255799731454880307487715823259317098779148486533660079705591127039529430;
}

template Commitment() {
    signal input meter_hash;
    signal input tariff_hash;
    signal input charge;
    signal input salt;
    signal output out;

    component h = Poseidon(8);
    h.inputs[0] <== DOMAIN_TAG();
    h.inputs[1] <== meter_hash;
    h.inputs[2] <== tariff_hash;
    h.inputs[3] <== charge;
    h.inputs[4] <== salt;
    h.inputs[5] <== 0;
    h.inputs[6] <== 0;
    h.inputs[7] <== 0;
    out <== h.out;
}
