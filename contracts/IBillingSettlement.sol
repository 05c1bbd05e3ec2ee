// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Settlement of proven usage charges against prepaid ETH balances (docs/operations.md; binding v2: docs/protocol-v2.md)
/// @notice A tenant account is identified on chain only by its `tenant_key`
///         (Poseidon(tenant_id, account_salt)), so observers learn a pseudonym and the charge.
///         An active attester (the vbill service, at tenant onboarding) opens the account and
///         names its controller; only then can anyone fund it. The controller alone chooses which
///         `tariff_key`s it accepts, sets its spending limits and withdraws. An active attester
///         submits Groth16 proofs, and each proven charge moves `charge × 10^12` wei
///         (1 micro-ETH = 10^12 wei) from the account to the payee.
/// @dev Why accounts are opened by an attester: if the first depositor became controller,
///      anyone watching the mempool could front-run a tenant's first deposit for its (public)
///      tenant key, become controller, and later withdraw the tenant's funds.
/// @dev One verifier per binding version (`verifierOf`), set by the owner (`setVerifier`); a
///      charge is verified by its binding's verifier, chosen by the entry point:
///      binding v1 (`settle`, `settleBatch`, `anchorCharge`): five public signals, in this order,
///      commitment, charge, tariff_key, nullifier, tenant_key;
///      binding v2, metered (`settleV2`, `settleBatchV2`, `anchorChargeV2`): the same five, then
///      prev_state_key, state_key (docs/protocol-v2.md §5). Both spend the same nullifiers and
///      draw on the same accounts, tariff acceptances and limits.
interface IBillingSettlement {
    // ------------------------------------------------------------------ structs

    /// @notice A Groth16 proof; `b` is in the EVM order [[x.im, x.re], [y.im, y.re]].
    struct Proof {
        uint256[2] a;
        uint256[2][2] b;
        uint256[2] c;
    }

    /// @notice Per-tenant state, packed so a settlement touches one written slot.
    /// @param available wei that settlements draw from first
    /// @param spentToday wei settled on `spentDay`
    /// @param spentDay the day (block.timestamp / 1 days) `spentToday` counts
    /// @param controller the address that accepts tariffs, sets limits and withdraws
    /// @param reserved wei of a requested withdrawal: still answers for charges until paid out,
    ///        so a tenant cannot race a settlement by withdrawing
    /// @param perRequestLimit most wei a single settlement may move
    /// @param dailyLimit most wei settled per day
    /// @param unlockAt when `reserved` may be withdrawn
    struct Account {
        uint96 available;
        uint96 spentToday;
        uint64 spentDay;
        address controller;
        uint96 reserved;
        uint96 perRequestLimit;
        uint96 dailyLimit;
        uint64 unlockAt;
    }

    /// @notice Standing of an attester key.
    enum AttesterStatus {
        None,
        Active,
        Revoked
    }

    // ------------------------------------------------------------------ errors

    /// @notice The caller is not the owner.
    error BillingSettlement__NotOwner(address caller);
    /// @notice The caller is not the pending owner.
    error BillingSettlement__NotPendingOwner(address caller);
    /// @notice The caller was never registered as an attester.
    error BillingSettlement__NotAttester(address caller);
    /// @notice The caller's attester key has been revoked.
    error BillingSettlement__AttesterRevoked(address attester);
    /// @notice The attester is already registered (active or revoked: revocation is final).
    error BillingSettlement__AttesterExists(address attester);
    /// @notice The caller is not the account's controller.
    error BillingSettlement__NotController(uint256 tenantKey, address caller);
    /// @notice The zero address was given where an address is needed.
    error BillingSettlement__ZeroAddress();
    /// @notice A deposit below `MIN_DEPOSIT`.
    error BillingSettlement__DepositTooSmall(uint256 minimum, uint256 value);
    /// @notice An amount does not fit the account's 96-bit fields.
    error BillingSettlement__AmountTooLarge(uint256 amount);
    /// @notice A tenant key that is zero or not below r.
    error BillingSettlement__InvalidTenantKey(uint256 tenantKey);
    /// @notice No account has been opened for this tenant key (settlement).
    error BillingSettlement__UnknownAccount(uint256 tenantKey);
    /// @notice A deposit to a tenant key whose account no attester has opened.
    error BillingSettlement__AccountNotOpen(uint256 tenantKey);
    /// @notice The account is already open: it has a controller, and only that controller can
    ///         hand it over (setController).
    error BillingSettlement__AccountExists(uint256 tenantKey);
    /// @notice No verifier is set for this binding id (or the id is not one the contract knows).
    error BillingSettlement__UnknownBinding(uint8 binding);
    /// @notice The address is not a verifier of this binding (its N_PUBLIC differs, or it has
    ///         no code).
    error BillingSettlement__VerifierMismatch(uint8 binding, address verifier);
    /// @notice A public signal is not below r (index into the binding's signals).
    error BillingSettlement__SignalOutOfField(uint256 index);
    /// @notice The Groth16 proof does not verify (or the verifier ran out of gas).
    error BillingSettlement__InvalidProof();
    /// @notice The batch's combined pairing check failed: at least one of the `proofs` proofs
    ///         is invalid (or the verifier ran out of gas). Nothing was settled; bisect off chain.
    error BillingSettlement__InvalidBatchProof(uint256 proofs);
    /// @notice The nullifier was already settled or anchored (replay).
    error BillingSettlement__NullifierUsed(uint256 nullifier);
    /// @notice The tenant has not accepted this tariff key.
    error BillingSettlement__TariffNotAccepted(uint256 tenantKey, uint256 tariffKey);
    /// @notice The charge exceeds the account's per-request limit.
    error BillingSettlement__PerRequestLimitExceeded(uint256 limit, uint256 amount);
    /// @notice The charge would take the day's total over the daily limit.
    error BillingSettlement__DailyLimitExceeded(uint256 limit, uint256 total);
    /// @notice The account cannot cover the charge.
    error BillingSettlement__InsufficientBalance(uint256 balance, uint256 amount);
    /// @notice Batch arrays differ in length or are empty.
    error BillingSettlement__BadBatch(uint256 proofs, uint256 signals);
    /// @notice A withdrawal is requested for more than is available, or for nothing.
    error BillingSettlement__BadWithdrawal(uint256 available, uint256 amount);
    /// @notice The reserved funds are still locked.
    error BillingSettlement__WithdrawalLocked(uint256 unlockAt);
    /// @notice There is nothing to pay out.
    error BillingSettlement__NothingToWithdraw();
    /// @notice Sending ETH failed.
    error BillingSettlement__TransferFailed(address to, uint256 amount);
    /// @notice A re-entered call.
    error BillingSettlement__Reentrancy();
    /// @notice An anchored tree head must be for a larger tree than the last one.
    error BillingSettlement__TreeHeadNotNewer(uint256 lastSize, uint256 size);
    /// @notice A correction credits a charge that never settled here (its nullifier is unspent).
    error BillingSettlement__NotSettled(uint256 nullifier);
    /// @notice The payee's unwithdrawn earnings cannot cover a correction's credit.
    error BillingSettlement__CreditExceedsEarnings(uint256 owed, uint256 credit);

    // ------------------------------------------------------------------ events

    /// @notice An attester opened the account; `controller` now administers it.
    event AccountOpened(uint256 indexed tenantKey, address indexed controller);
    /// @notice ETH was credited to an account.
    event Deposited(uint256 indexed tenantKey, address indexed from, uint256 amount);
    /// @notice The account accepts (or no longer accepts) a tariff key.
    event TariffAcceptance(uint256 indexed tenantKey, uint256 indexed tariffKey, bool accepted);
    /// @notice The account's limits changed.
    event LimitsSet(uint256 indexed tenantKey, uint256 perRequestLimit, uint256 dailyLimit);
    /// @notice The account's controller changed.
    event ControllerChanged(uint256 indexed tenantKey, address indexed controller);
    /// @notice Funds moved from available to reserved, withdrawable from `unlockAt`.
    event WithdrawalRequested(uint256 indexed tenantKey, uint256 amount, uint256 unlockAt);
    /// @notice Reserved funds were paid out.
    event Withdrawn(uint256 indexed tenantKey, address indexed to, uint256 amount);
    /// @notice A proven charge moved `weiAmount` from the tenant to the payee.
    event ChargeSettled(
        uint256 indexed tenantKey,
        uint256 indexed nullifier,
        uint256 commitment,
        uint256 charge,
        uint256 weiAmount
    );
    /// @notice A proven charge in another currency was recorded; no ETH moved.
    event ChargeAnchored(
        uint256 indexed tenantKey, uint256 indexed nullifier, uint256 commitment, uint256 charge
    );
    /// @notice A v2 charge moved its billing window from `prevStateKey` to `stateKey`: with the
    ///         event's ChargeSettled (or ChargeAnchored) beside it, an auditor rebuilds each
    ///         window's chain of state keys from logs alone (follow `stateKey` → next
    ///         `prevStateKey`; both indexed).
    event WindowAdvanced(
        uint256 indexed tenantKey,
        uint256 indexed prevStateKey,
        uint256 indexed stateKey,
        uint256 nullifier
    );
    /// @notice A proven correction (binding v2c) of the settled charge whose nullifier is
    ///         `correctsNullifier` moved `weiAmount` back from the payee to the tenant.
    event ChargeCorrected(
        uint256 indexed tenantKey,
        uint256 indexed nullifier,
        uint256 indexed correctsNullifier,
        uint256 commitment,
        uint256 credit,
        uint256 weiAmount
    );
    /// @notice Charges of `binding` are now verified by `verifier` (zero: the binding is off).
    event VerifierSet(uint8 indexed binding, address indexed previous, address indexed verifier);
    /// @notice A transparency-log tree head was anchored.
    event TreeHeadAnchored(bytes32 indexed root, uint256 size, address indexed attester);
    /// @notice An attester key was registered.
    event AttesterAdded(address indexed attester);
    /// @notice An attester key was revoked, for good.
    event AttesterRevoked(address indexed attester);
    /// @notice Settlements now pay `payee`.
    event PayeeChanged(address indexed previous, address indexed payee);
    /// @notice A payee withdrew its earnings.
    event PayeeWithdrawn(address indexed payee, uint256 amount);
    /// @notice Ownership transfer started; `pending` must accept.
    event OwnershipTransferStarted(address indexed owner, address indexed pending);
    /// @notice Ownership moved.
    event OwnershipTransferred(address indexed previous, address indexed owner);

    // ------------------------------------------------------------------ tenants

    /// @notice Credit `msg.value` to the open account for `tenantKey` (anyone may top it up;
    ///         only its controller can withdraw). Reverts below MIN_DEPOSIT and, with
    ///         AccountNotOpen, for a tenant key no attester has opened.
    function deposit(uint256 tenantKey) external payable;

    /// @notice Accept `tariffKey` for ETH settlement (controller only).
    /// @dev Accept only tariffs whose currency is ETH: the contract cannot see the currency
    ///      inside the key, and would settle a USD micro as an ETH micro.
    function acceptTariff(uint256 tenantKey, uint256 tariffKey) external;

    /// @notice Stop accepting `tariffKey` (controller only).
    function revokeTariff(uint256 tenantKey, uint256 tariffKey) external;

    /// @notice Set the wei limits per settlement and per day (controller only).
    function setLimits(uint256 tenantKey, uint256 perRequestLimit, uint256 dailyLimit) external;

    /// @notice Hand the account to another controller (controller only).
    function setController(uint256 tenantKey, address controller) external;

    /// @notice Move `amount` from available to reserved, withdrawable after WITHDRAWAL_DELAY.
    function requestWithdrawal(uint256 tenantKey, uint256 amount) external;

    /// @notice Pay the unlocked reserved funds to the controller.
    function withdraw(uint256 tenantKey) external;

    // ------------------------------------------------------------------ attesters

    /// @notice Open the account for `tenantKey` with `controller` as its administrator (active
    ///         attester only; the service does this at tenant onboarding). Unlimited limits
    ///         until the controller sets some. Reverts AccountExists if already open.
    function openAccount(uint256 tenantKey, address controller) external;

    /// @notice Settle one proven charge (active attester only).
    function settle(Proof calldata proof, uint256[5] calldata publicSignals) external;

    /// @notice Settle many proven charges atomically (active attester only): each charge gets
    ///         every check `settle` makes (nullifier, tariff, limits, balance), and the proofs are
    ///         verified together with one pairing (IBillingVerifier.verifyBatch). If that fails
    ///         the whole batch reverts InvalidBatchProof.
    function settleBatch(Proof[] calldata proofs, uint256[5][] calldata publicSignals) external;

    /// @notice Record a proven charge in a non-ETH currency: the nullifier is spent, no ETH moves.
    function anchorCharge(Proof calldata proof, uint256[5] calldata publicSignals) external;

    /// @notice Settle one proven metered (binding v2) charge: every check of `settle`, verified
    ///         by the v2 verifier over all seven signals; also emits WindowAdvanced.
    function settleV2(Proof calldata proof, uint256[7] calldata publicSignals) external;

    /// @notice `settleBatch` for binding v2: one pairing for the batch, one WindowAdvanced per
    ///         charge. A batch holds one binding only.
    function settleBatchV2(Proof[] calldata proofs, uint256[7][] calldata publicSignals) external;

    /// @notice `anchorCharge` for binding v2 (also emits WindowAdvanced).
    function anchorChargeV2(Proof calldata proof, uint256[7] calldata publicSignals) external;

    /// @notice Settle one proven correction (binding v2c, docs/protocol-corrections.md) of a
    ///         settled ETH charge (active attester only): signals below r, the correction
    ///         nullifier (signal 3) unused, the corrected charge's nullifier (signal 8) spent, an
    ///         open account accepting the tariff key, the credit within the payee's unwithdrawn
    ///         earnings, the proof verified by the v2c verifier over all nine signals; then the
    ///         credit moves from the payee to the tenant's available balance, the nullifier is
    ///         spent (a correction settles once), and ChargeCorrected and WindowAdvanced are
    ///         emitted.
    function settleCorrection(Proof calldata proof, uint256[9] calldata publicSignals) external;

    /// @notice Anchor a transparency-log tree head (active attester only).
    function anchorTreeHead(bytes32 root, uint256 size) external;

    // ------------------------------------------------------------------ payee and owner

    /// @notice Pay the caller what settlements credited it.
    function withdrawPayee() external;

    /// @notice Register an attester key (owner only).
    function addAttester(address attester) external;

    /// @notice Revoke an attester key; it can never settle again (owner only).
    function revokeAttester(address attester) external;

    /// @notice Verify charges of `binding` (BINDING_V1 = 1, BINDING_V2 = 2, corrections
    ///         BINDING_V2C = 3) with `verifier`
    ///         (owner only): adding or re-keying a binding is this one transaction, accounts stay.
    ///         Reverts VerifierMismatch unless `verifier` reports the binding's N_PUBLIC;
    ///         the zero address switches the binding off.
    /// @dev Tenants trust the owner with this as with attesters: watch VerifierSet.
    function setVerifier(uint8 binding, address verifier) external;

    /// @notice Direct future settlements to `payee` (owner only).
    function setPayee(address payee) external;

    /// @notice Start handing the contract to `pending` (owner only).
    function transferOwnership(address pending) external;

    /// @notice Finish an ownership transfer (pending owner only).
    function acceptOwnership() external;

    // ------------------------------------------------------------------ views

    /// @notice The account's balances in wei; total = available + reserved.
    function balanceOf(uint256 tenantKey)
        external
        view
        returns (uint256 available, uint256 reserved, uint256 total);

    /// @notice The full account record.
    function accountOf(uint256 tenantKey) external view returns (Account memory);

    /// @notice Whether the account accepts the tariff key.
    function isTariffAccepted(uint256 tenantKey, uint256 tariffKey) external view returns (bool);

    /// @notice Whether the nullifier has been settled or anchored.
    function isNullifierUsed(uint256 nullifier) external view returns (bool);

    /// @notice The verifier of a binding id (zero if none).
    function verifierOf(uint8 binding) external view returns (address);

    /// @notice Wei owed to `payee`.
    function payeeBalance(address payee) external view returns (uint256);
}
