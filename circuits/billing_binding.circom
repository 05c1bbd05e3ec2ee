pragma circom 2.1.0;

// BillingBinding, binding version bn128-poseidon8-v1 (docs/protocol.md §3).
//
// Proves: for private meter fields, tariff fields and salts, the charge is exactly what the
// usage_linear tariff gives for that usage (fixed-point product, rounding, clamp to
// [min, max]), and publishes Poseidon commitments binding meter, tariff and charge.
// Public signals (outputs of main, in this order; circuits/circuits.json `pubs` says the same):
//   commitment  Poseidon8(domain_tag, meter_hash, tariff_hash, charge, salt, 0, 0, 0)
//   charge      the clamped charge in micros (moves money, so it is public)
//   tariff_key  Poseidon(tariff_hash, account_salt): the contract checks the tenant agreed to it
//   nullifier   Poseidon(tenant_id, event_id, account_salt): one settlement per event
//   tenant_key  Poseidon(tenant_id, account_salt): the pseudonymous account on chain
// They are outputs, not public inputs: snarkjs orders public inputs by declaration, outputs
// come first in declaration order, so the order above is fixed by this file.
// Range checks: usage_units, price_scaled, min/max_charge_micros, event_timestamp < 2^64;
// min ≤ max; rounding_mode ∈ {0, 1, 2}; tariff_class = 1 (usage_linear); q < 2^109,
// rem < 10^6 (in LinearCharge); the clamp runs at 110 bits.
// NOTE: callers encode inputs as in docs/protocol.md; strings and salts are arbitrary field elements.

include "./range.circom";
include "./meter_hash.circom";
include "./tariff_hash.circom";
include "./linear_charge.circom";
include "./clamp.circom";
include "./commitment.circom";
include "./keys.circom";

template BillingBinding() {
    // meter event
    signal input event_id;
    signal input event_timestamp;
    signal input tenant_id;
    signal input api_key_id;
    signal input endpoint;
    signal input usage_units;
    signal input contract_version;
    signal input billing_window_id;
    // tariff snapshot
    signal input tariff_id;
    signal input tariff_version;
    signal input tariff_class;
    signal input price_scaled;
    signal input min_charge_micros;
    signal input max_charge_micros;
    signal input rounding_mode;
    signal input currency;
    // blinding
    signal input salt;
    signal input account_salt;

    signal output commitment;
    signal output charge;
    signal output tariff_key;
    signal output nullifier;
    signal output tenant_key;

    var INT_BITS = 64;     // docs/protocol.md: every integer input is < 2^64
    var CLAMP_BITS = 110;  // rounded ≤ q + 1 < 2^109 + 1 ≤ 2^110 (see LinearCharge)
    var USAGE_LINEAR = 1;  // the only tariff class of this binding version

    // --- input validity ---
    component tsRange = RangeCheck(INT_BITS);
    tsRange.in <== event_timestamp;
    component usageRange = RangeCheck(INT_BITS);
    usageRange.in <== usage_units;
    component priceRange = RangeCheck(INT_BITS);
    priceRange.in <== price_scaled;
    component minRange = RangeCheck(INT_BITS);
    minRange.in <== min_charge_micros;
    component maxRange = RangeCheck(INT_BITS);
    maxRange.in <== max_charge_micros;
    component minLeMax = AssertLessEq(INT_BITS);
    minLeMax.a <== min_charge_micros;
    minLeMax.b <== max_charge_micros;
    tariff_class === USAGE_LINEAR;

    // --- charge ---
    component linear = LinearCharge();
    linear.usage_units <== usage_units;
    linear.price_scaled <== price_scaled;
    linear.rounding_mode <== rounding_mode;

    component clamp = Clamp(CLAMP_BITS);
    clamp.in <== linear.rounded;
    clamp.lo <== min_charge_micros;
    clamp.hi <== max_charge_micros;
    charge <== clamp.out;

    // --- commitments and keys ---
    component meter = MeterHash();
    meter.event_id <== event_id;
    meter.event_timestamp <== event_timestamp;
    meter.tenant_id <== tenant_id;
    meter.api_key_id <== api_key_id;
    meter.endpoint <== endpoint;
    meter.usage_units <== usage_units;
    meter.contract_version <== contract_version;
    meter.billing_window_id <== billing_window_id;

    component tariff = TariffHash();
    tariff.tariff_id <== tariff_id;
    tariff.tariff_version <== tariff_version;
    tariff.tariff_class <== tariff_class;
    tariff.price_scaled <== price_scaled;
    tariff.min_charge_micros <== min_charge_micros;
    tariff.max_charge_micros <== max_charge_micros;
    tariff.rounding_mode <== rounding_mode;
    tariff.currency <== currency;

    component com = Commitment();
    com.meter_hash <== meter.out;
    com.tariff_hash <== tariff.out;
    com.charge <== charge;
    com.salt <== salt;
    commitment <== com.out;

    component tk = TariffKey();
    tk.tariff_hash <== tariff.out;
    tk.account_salt <== account_salt;
    tariff_key <== tk.out;

    component nf = Nullifier();
    nf.tenant_id <== tenant_id;
    nf.event_id <== event_id;
    nf.account_salt <== account_salt;
    nullifier <== nf.out;

    component tn = TenantKey();
    tn.tenant_id <== tenant_id;
    tn.account_salt <== account_salt;
    tenant_key <== tn.out;
}
