pragma circom 2.1.0;

// Keys: the salted pseudonyms a chain observer sees (docs/protocol.md §3).
//
// Proves: TariffKey out = Poseidon(tariff_hash, account_salt);
//         Nullifier out = Poseidon(tenant_id, event_id, account_salt);
//         TenantKey out = Poseidon(tenant_id, account_salt).
// Public signals: none here; BillingBinding exposes them as tariff_key, nullifier, tenant_key.
// NOTE: account_salt must be a random field element fixed per tenant account; without it the
// keys could be inverted by guessing tenant names and event ids and hashing them.

include "circomlib/circuits/poseidon.circom";

template TariffKey() {
    signal input tariff_hash;
    signal input account_salt;
    signal output out;

    component h = Poseidon(2);
    h.inputs[0] <== tariff_hash;
    h.inputs[1] <== account_salt;
    out <== h.out;
}

template Nullifier() {
    signal input tenant_id;
    signal input event_id;
    signal input account_salt;
    signal output out;

    component h = Poseidon(3);
    h.inputs[0] <== tenant_id;
    h.inputs[1] <== event_id;
    h.inputs[2] <== account_salt;
    out <== h.out;
}

template TenantKey() {
    signal input tenant_id;
    signal input account_salt;
    signal output out;

    component h = Poseidon(2);
    h.inputs[0] <== tenant_id;
    h.inputs[1] <== account_salt;
    out <== h.out;
}
