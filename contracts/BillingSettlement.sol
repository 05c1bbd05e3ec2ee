// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {BillingSettlementBase} from "./BillingSettlementBase.sol";

/// @title BillingSettlement: prepaid ETH accounts settled by Groth16-proven usage charges
/// @notice See {IBillingSettlement} for the behaviour and {BillingSettlementBase} for the logic.
contract BillingSettlement is BillingSettlementBase {
    constructor(address owner_, address payee_) BillingSettlementBase(owner_, payee_) {}

    /// @dev See {IBillingSettlement-deposit}.
    function deposit(uint256 tenantKey) external payable {
        _deposit(tenantKey);
    }

    /// @dev See {IBillingSettlement-acceptTariff}.
    function acceptTariff(uint256 tenantKey, uint256 tariffKey) external onlyController(tenantKey) {
        _setTariff(tenantKey, tariffKey, true);
    }

    /// @dev See {IBillingSettlement-revokeTariff}.
    function revokeTariff(uint256 tenantKey, uint256 tariffKey) external onlyController(tenantKey) {
        _setTariff(tenantKey, tariffKey, false);
    }

    /// @dev See {IBillingSettlement-setLimits}.
    function setLimits(uint256 tenantKey, uint256 perRequestLimit, uint256 dailyLimit)
        external
        onlyController(tenantKey)
    {
        _setLimits(tenantKey, perRequestLimit, dailyLimit);
    }

    /// @dev See {IBillingSettlement-setController}.
    function setController(uint256 tenantKey, address controller) external onlyController(tenantKey) {
        _setController(tenantKey, controller);
    }

    /// @dev See {IBillingSettlement-requestWithdrawal}.
    function requestWithdrawal(uint256 tenantKey, uint256 amount) external onlyController(tenantKey) {
        _requestWithdrawal(tenantKey, amount);
    }

    /// @dev See {IBillingSettlement-withdraw}.
    function withdraw(uint256 tenantKey) external onlyController(tenantKey) nonReentrant {
        _withdraw(tenantKey);
    }

    /// @dev See {IBillingSettlement-openAccount}.
    function openAccount(uint256 tenantKey, address controller) external onlyAttester {
        _openAccount(tenantKey, controller);
    }

    /// @dev See {IBillingSettlement-settle}.
    function settle(Proof calldata proof, uint256[5] calldata publicSignals) external onlyAttester {
        _settle(proof, publicSignals);
    }

    /// @dev See {IBillingSettlement-settleBatch}.
    function settleBatch(Proof[] calldata proofs, uint256[5][] calldata publicSignals)
        external
        onlyAttester
    {
        _settleBatch(proofs, publicSignals);
    }

    /// @dev See {IBillingSettlement-anchorCharge}.
    function anchorCharge(Proof calldata proof, uint256[5] calldata publicSignals) external onlyAttester {
        _anchorCharge(proof, publicSignals);
    }

    /// @dev See {IBillingSettlement-settleV2}.
    function settleV2(Proof calldata proof, uint256[7] calldata publicSignals) external onlyAttester {
        _settleV2(proof, publicSignals);
    }

    /// @dev See {IBillingSettlement-settleBatchV2}.
    function settleBatchV2(Proof[] calldata proofs, uint256[7][] calldata publicSignals)
        external
        onlyAttester
    {
        _settleBatchV2(proofs, publicSignals);
    }

    /// @dev See {IBillingSettlement-anchorChargeV2}.
    function anchorChargeV2(Proof calldata proof, uint256[7] calldata publicSignals) external onlyAttester {
        _anchorChargeV2(proof, publicSignals);
    }

    /// @dev See {IBillingSettlement-settleCorrection}.
    function settleCorrection(Proof calldata proof, uint256[9] calldata publicSignals) external onlyAttester {
        _settleCorrection(proof, publicSignals);
    }

    /// @dev See {IBillingSettlement-anchorTreeHead}.
    function anchorTreeHead(bytes32 root, uint256 size) external onlyAttester {
        _anchorTreeHead(root, size);
    }

    /// @dev See {IBillingSettlement-withdrawPayee}.
    function withdrawPayee() external nonReentrant {
        _withdrawPayee();
    }

    /// @dev See {IBillingSettlement-addAttester}.
    function addAttester(address attester) external onlyOwner {
        _addAttester(attester);
    }

    /// @dev See {IBillingSettlement-revokeAttester}.
    function revokeAttester(address attester) external onlyOwner {
        _revokeAttester(attester);
    }

    /// @dev See {IBillingSettlement-setVerifier}.
    function setVerifier(uint8 binding, address verifier) external onlyOwner {
        _setVerifier(binding, verifier);
    }

    /// @dev See {IBillingSettlement-setPayee}.
    function setPayee(address newPayee) external onlyOwner {
        _setPayee(newPayee);
    }

    /// @dev See {IBillingSettlement-transferOwnership}.
    function transferOwnership(address pending) external onlyOwner {
        _transferOwnership(pending);
    }

    /// @dev See {IBillingSettlement-acceptOwnership}.
    function acceptOwnership() external {
        _acceptOwnership();
    }

    /// @dev See {IBillingSettlement-balanceOf}.
    function balanceOf(uint256 tenantKey)
        external
        view
        returns (uint256 available, uint256 reserved, uint256 total)
    {
        return _balanceOf(tenantKey);
    }

    /// @dev See {IBillingSettlement-accountOf}.
    function accountOf(uint256 tenantKey) external view returns (Account memory) {
        return _accounts[tenantKey];
    }

    /// @dev See {IBillingSettlement-isTariffAccepted}.
    function isTariffAccepted(uint256 tenantKey, uint256 tariffKey) external view returns (bool) {
        return _tariffs[tenantKey][tariffKey];
    }

    /// @dev See {IBillingSettlement-isNullifierUsed}.
    function isNullifierUsed(uint256 nullifier) external view returns (bool) {
        return _nullifiers[nullifier];
    }

    /// @dev See {IBillingSettlement-verifierOf}.
    function verifierOf(uint8 binding) external view returns (address) {
        return _verifiers[binding];
    }

    /// @dev See {IBillingSettlement-payeeBalance}.
    function payeeBalance(address who) external view returns (uint256) {
        return _payeeBalance(who);
    }
}
