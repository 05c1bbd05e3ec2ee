// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IBillingSettlement} from "./IBillingSettlement.sol";

/// @title The generated Groth16 verifier of binding v1, as BillingSettlement sees it
/// @notice Rendered from build/vkey.json by `make verifier` (contracts/templates/BillingVerifier.sol.j2).
interface IBillingVerifier {
    /// @notice Number of public signals (5); BillingSettlement.setVerifier checks it.
    function N_PUBLIC() external view returns (uint256);

    /// @notice True iff the proof verifies for the public signals
    ///         [commitment, charge, tariff_key, nullifier, tenant_key].
    /// @dev Returns false (never reverts) on malformed input or when a precompile runs out of gas,
    ///      so callers must require the result. pB is in the EVM order [[x.im, x.re], [y.im, y.re]].
    function verifyProof(
        uint256[2] calldata pA,
        uint256[2][2] calldata pB,
        uint256[2] calldata pC,
        uint256[5] calldata pubSignals
    ) external view returns (bool);

    /// @notice True iff every proof verifies for its row of public signals, checked with one
    ///         pairing call over a Fiat–Shamir random linear combination (see the rendered
    ///         verifier's header for why that is sound).
    /// @dev Returns false (never reverts) on malformed input, an empty batch, arrays of different
    ///      lengths, more than MAX_BATCH proofs, or a precompile out of gas: require the result.
    function verifyBatch(
        IBillingSettlement.Proof[] calldata proofs,
        uint256[5][] calldata pubSignals
    ) external view returns (bool);
}

/// @title The generated Groth16 verifier of binding v2 (metered), as BillingSettlement sees it
/// @notice Rendered from build/vkey-v2.json by the same template; same behaviour as
///         {IBillingVerifier} over seven public signals.
interface IBillingVerifierV2 {
    /// @notice Number of public signals (7); BillingSettlement.setVerifier checks it.
    function N_PUBLIC() external view returns (uint256);

    /// @notice True iff the proof verifies for the public signals [commitment, charge,
    ///         tariff_key, nullifier, tenant_key, prev_state_key, state_key]; false on any failure.
    function verifyProof(
        uint256[2] calldata pA,
        uint256[2][2] calldata pB,
        uint256[2] calldata pC,
        uint256[7] calldata pubSignals
    ) external view returns (bool);

    /// @notice The batch check of {IBillingVerifier-verifyBatch} over rows of seven signals.
    function verifyBatch(
        IBillingSettlement.Proof[] calldata proofs,
        uint256[7][] calldata pubSignals
    ) external view returns (bool);
}

/// @title The generated Groth16 verifier of binding v2c (corrections), as BillingSettlement sees it
/// @notice Rendered from build/vkey-v2c.json by the same template; same behaviour as
///         {IBillingVerifier} over nine public signals.
interface IBillingVerifierV2C {
    /// @notice Number of public signals (9); BillingSettlement.setVerifier checks it.
    function N_PUBLIC() external view returns (uint256);

    /// @notice True iff the proof verifies for the public signals [commitment, credit,
    ///         tariff_key, nullifier, tenant_key, prev_state_key, state_key, corrects,
    ///         corrects_nullifier]; false on any failure.
    function verifyProof(
        uint256[2] calldata pA,
        uint256[2][2] calldata pB,
        uint256[2] calldata pC,
        uint256[9] calldata pubSignals
    ) external view returns (bool);

    /// @notice The batch check of {IBillingVerifier-verifyBatch} over rows of nine signals.
    function verifyBatch(
        IBillingSettlement.Proof[] calldata proofs,
        uint256[9][] calldata pubSignals
    ) external view returns (bool);
}
