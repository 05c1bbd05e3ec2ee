pragma circom 2.1.0;

// Hashes of binding bn128-poseidon8-v2 (docs/protocol-v2.md, "Hash layout").
//
// 64-bit values are packed three to a field element, little end first:
//   pack(v0, v1, v2) = v0 + v1·2^64 + v2·2^128   (injective because each v_i < 2^64).
// MeteredCommitment  out = Poseidon11(DOMAIN_TAG_V2, event_id, tenant_id, api_key_id, endpoint,
//                          contract_version, billing_window_id, pack(event_timestamp, units[0],
//                          units[1]), pack(units[2], units[3], charge), tariff_key, salt)
// MeteredTariffKey   out = Poseidon16(tariff_id, tariff_version, currency, dimension_names,
//                          pack(words[0..2]), ..., pack(words[27..29]), pack(words[30], words[31]),
//                          account_salt); words = tariff_class, rounding_mode, min, max, then per
//                          dimension d: price[d][0..3], up_to[d][0..2]
// WindowStateKey     out = Poseidon7(tenant_id, billing_window_id, tariff_id, pack(seq, units[0],
//                          units[1]), pack(units[2], units[3], charge), amount, account_salt)
// Public signals: none here; MeteredBinding exposes them as commitment, tariff_key,
// prev_state_key and state_key.
// NOTE: callers range-check every packed value to < 2^64 and `amount` to < 2^130; strings,
// salts and hashes are arbitrary field elements. DOMAIN_TAG_V2 is the string rule applied to
// "bn128-poseidon8-v2": int(SHA-256(utf8("bn128-poseidon8-v2"))) mod r.

include "circomlib/circuits/poseidon.circom";

function DOMAIN_TAG_V2() {
    return 5539946734018440555526343997935695594434219922238030421883911567193234656475;
}

template MeteredCommitment() {
    signal input event_id;
    signal input event_timestamp;
    signal input tenant_id;
    signal input api_key_id;
    signal input endpoint;
    signal input contract_version;
    signal input billing_window_id;
    signal input units[4];
    signal input charge;
    signal input tariff_key;
    signal input salt;
    signal output out;

    component h = Poseidon(11);
    h.inputs[0] <== DOMAIN_TAG_V2();
    h.inputs[1] <== event_id;
    h.inputs[2] <== tenant_id;
    h.inputs[3] <== api_key_id;
    h.inputs[4] <== endpoint;
    h.inputs[5] <== contract_version;
    h.inputs[6] <== billing_window_id;
    h.inputs[7] <== event_timestamp + units[0] * 2**64 + units[1] * 2**128;
    h.inputs[8] <== units[2] + units[3] * 2**64 + charge * 2**128;
    h.inputs[9] <== tariff_key;
    h.inputs[10] <== salt;
    out <== h.out;
}

template MeteredTariffKey() {
    signal input tariff_id;
    signal input tariff_version;
    signal input currency;
    signal input dimension_names;
    signal input words[32];
    signal input account_salt;
    signal output out;

    component h = Poseidon(16);
    h.inputs[0] <== tariff_id;
    h.inputs[1] <== tariff_version;
    h.inputs[2] <== currency;
    h.inputs[3] <== dimension_names;
    for (var i = 0; i < 11; i++) {
        var packed = 0;
        for (var j = 0; j < 3 && 3 * i + j < 32; j++) {
            packed += words[3 * i + j] * 2**(64 * j);
        }
        h.inputs[4 + i] <== packed;
    }
    h.inputs[15] <== account_salt;
    out <== h.out;
}

template WindowStateKey() {
    signal input tenant_id;
    signal input billing_window_id;
    signal input tariff_id;
    signal input seq;
    signal input units[4];
    signal input charge;
    signal input amount;
    signal input account_salt;
    signal output out;

    component h = Poseidon(7);
    h.inputs[0] <== tenant_id;
    h.inputs[1] <== billing_window_id;
    h.inputs[2] <== tariff_id;
    h.inputs[3] <== seq + units[0] * 2**64 + units[1] * 2**128;
    h.inputs[4] <== units[2] + units[3] * 2**64 + charge * 2**128;
    h.inputs[5] <== amount;
    h.inputs[6] <== account_salt;
    out <== h.out;
}
