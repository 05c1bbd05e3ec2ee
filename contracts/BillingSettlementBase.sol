// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IBillingSettlement} from "./IBillingSettlement.sol";
import {IBillingVerifier, IBillingVerifierV2, IBillingVerifierV2C} from "./IBillingVerifier.sol";

/// @title The logic of BillingSettlement; see {IBillingSettlement} for the behaviour
/// @dev Ordering in every state-changing path: cheap checks first, the proof last (settlement
///      applies a charge's effects before its proof is verified, reverting all of them if it
///      fails; verifiers are only ever called with STATICCALL, so nothing can re-enter), and the one
///      interaction (ETH transfer) last, behind a reentrancy lock.
abstract contract BillingSettlementBase is IBillingSettlement {
    /// @notice BN254 scalar field size: every public signal and tenant key is below it.
    uint256 public constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice Smallest deposit, in wei.
    uint256 public constant MIN_DEPOSIT = 0.01 ether;
    /// @notice wei per micro-unit of an ETH tariff.
    uint256 public constant WEI_PER_MICRO = 1e12;
    /// @notice How long requested withdrawals stay reserved (and chargeable).
    uint256 public constant WITHDRAWAL_DELAY = 1 days;

    /// @notice Binding ids: bn128-poseidon8-v1 (five signals) and bn128-poseidon8-v2 (seven).
    uint8 public constant BINDING_V1 = 1;
    uint8 public constant BINDING_V2 = 2;
    /// @notice Binding id of bn128-poseidon8-v2c, corrections of v2 charges (nine signals).
    uint8 public constant BINDING_V2C = 3;
    uint256 internal constant N_PUBLIC_V1 = 5;
    uint256 internal constant N_PUBLIC_V2 = 7;
    uint256 internal constant N_PUBLIC_V2C = 9;

    address public owner;
    address public pendingOwner;
    /// @notice Current payee and what it is owed, in one slot (one write per settlement).
    address public payee;
    uint96 internal _payeeOwed;
    /// @notice Size of the last anchored transparency tree.
    uint256 public lastAnchoredSize;

    mapping(uint256 tenantKey => Account) internal _accounts;
    mapping(uint256 tenantKey => mapping(uint256 tariffKey => bool)) internal _tariffs;
    mapping(uint256 nullifier => bool) internal _nullifiers;
    mapping(address attester => AttesterStatus) public attesterStatus;
    /// @notice Earnings of former payees, withdrawable by them.
    mapping(address => uint256) internal _retiredPayeeCredit;
    /// @notice The Groth16 verifier of each binding (set by the owner).
    mapping(uint8 binding => address) internal _verifiers;

    bool private transient _locked;

    modifier onlyOwner() {
        if (msg.sender != owner) revert BillingSettlement__NotOwner(msg.sender);
        _;
    }

    modifier onlyAttester() {
        AttesterStatus status = attesterStatus[msg.sender];
        if (status != AttesterStatus.Active) {
            if (status == AttesterStatus.Revoked) revert BillingSettlement__AttesterRevoked(msg.sender);
            revert BillingSettlement__NotAttester(msg.sender);
        }
        _;
    }

    modifier onlyController(uint256 tenantKey) {
        if (_accounts[tenantKey].controller != msg.sender) {
            revert BillingSettlement__NotController(tenantKey, msg.sender);
        }
        _;
    }

    modifier nonReentrant() {
        if (_locked) revert BillingSettlement__Reentrancy();
        _locked = true;
        _;
        _locked = false;
    }

    /// @dev No verifier yet: the owner sets one per binding (setVerifier) before anything settles.
    constructor(address owner_, address payee_) {
        if (owner_ == address(0) || payee_ == address(0)) revert BillingSettlement__ZeroAddress();
        owner = owner_;
        payee = payee_;
        emit OwnershipTransferred(address(0), owner_);
        emit PayeeChanged(address(0), payee_);
    }

    // ------------------------------------------------------------------ tenants

    function _openAccount(uint256 tenantKey, address controller) internal {
        _requireTenantKey(tenantKey);
        if (controller == address(0)) revert BillingSettlement__ZeroAddress();
        Account storage acct = _accounts[tenantKey];
        if (acct.controller != address(0)) revert BillingSettlement__AccountExists(tenantKey);
        acct.controller = controller;
        acct.perRequestLimit = type(uint96).max;
        acct.dailyLimit = type(uint96).max;
        emit AccountOpened(tenantKey, controller);
    }

    function _deposit(uint256 tenantKey) internal {
        _requireTenantKey(tenantKey);
        if (msg.value < MIN_DEPOSIT) revert BillingSettlement__DepositTooSmall(MIN_DEPOSIT, msg.value);
        Account storage acct = _accounts[tenantKey];
        if (acct.controller == address(0)) revert BillingSettlement__AccountNotOpen(tenantKey);
        uint256 available = uint256(acct.available) + msg.value;
        if (available > type(uint96).max) revert BillingSettlement__AmountTooLarge(available);
        acct.available = uint96(available);
        emit Deposited(tenantKey, msg.sender, msg.value);
    }

    function _requireTenantKey(uint256 tenantKey) internal pure {
        if (tenantKey == 0 || tenantKey >= SNARK_SCALAR_FIELD) {
            revert BillingSettlement__InvalidTenantKey(tenantKey);
        }
    }

    function _setTariff(uint256 tenantKey, uint256 tariffKey, bool accepted) internal {
        _tariffs[tenantKey][tariffKey] = accepted;
        emit TariffAcceptance(tenantKey, tariffKey, accepted);
    }

    function _setLimits(uint256 tenantKey, uint256 perRequestLimit, uint256 dailyLimit) internal {
        if (perRequestLimit > type(uint96).max) revert BillingSettlement__AmountTooLarge(perRequestLimit);
        if (dailyLimit > type(uint96).max) revert BillingSettlement__AmountTooLarge(dailyLimit);
        Account storage acct = _accounts[tenantKey];
        acct.perRequestLimit = uint96(perRequestLimit);
        acct.dailyLimit = uint96(dailyLimit);
        emit LimitsSet(tenantKey, perRequestLimit, dailyLimit);
    }

    function _setController(uint256 tenantKey, address controller) internal {
        if (controller == address(0)) revert BillingSettlement__ZeroAddress();
        _accounts[tenantKey].controller = controller;
        emit ControllerChanged(tenantKey, controller);
    }

    function _requestWithdrawal(uint256 tenantKey, uint256 amount) internal {
        Account storage acct = _accounts[tenantKey];
        if (amount == 0 || amount > acct.available) {
            revert BillingSettlement__BadWithdrawal(acct.available, amount);
        }
        uint64 unlockAt = uint64(block.timestamp + WITHDRAWAL_DELAY);
        acct.available -= uint96(amount);
        acct.reserved += uint96(amount);
        acct.unlockAt = unlockAt;
        emit WithdrawalRequested(tenantKey, amount, unlockAt);
    }

    function _withdraw(uint256 tenantKey) internal {
        Account storage acct = _accounts[tenantKey];
        uint256 amount = acct.reserved;
        if (amount == 0) revert BillingSettlement__NothingToWithdraw();
        if (block.timestamp < acct.unlockAt) revert BillingSettlement__WithdrawalLocked(acct.unlockAt);
        address to = acct.controller;
        acct.reserved = 0;
        emit Withdrawn(tenantKey, to, amount);
        _send(to, amount);
    }

    // ------------------------------------------------------------------ settlement

    /// @dev Reverts SignalOutOfField unless every public signal is below r (unrolled: this
    ///      runs once per settled proof).
    function _checkSignals(uint256[5] calldata s) internal pure {
        if (s[0] >= SNARK_SCALAR_FIELD) revert BillingSettlement__SignalOutOfField(0);
        if (s[1] >= SNARK_SCALAR_FIELD) revert BillingSettlement__SignalOutOfField(1);
        if (s[2] >= SNARK_SCALAR_FIELD) revert BillingSettlement__SignalOutOfField(2);
        if (s[3] >= SNARK_SCALAR_FIELD) revert BillingSettlement__SignalOutOfField(3);
        if (s[4] >= SNARK_SCALAR_FIELD) revert BillingSettlement__SignalOutOfField(4);
    }

    /// @dev v2's own two signals (the state keys) below r; its first five go through _checkSignals.
    function _checkStateKeys(uint256[7] calldata s) internal pure {
        if (s[5] >= SNARK_SCALAR_FIELD) revert BillingSettlement__SignalOutOfField(5);
        if (s[6] >= SNARK_SCALAR_FIELD) revert BillingSettlement__SignalOutOfField(6);
    }

    /// @dev The first five of v2's signals as a v1 row: they are v1's signals, in v1's order
    ///      (docs/protocol-v2.md §5), so one _charge serves both bindings. A static calldata
    ///      array is its offset, and the five words at that offset are exactly the v1 row.
    function _v1Row(uint256[7] calldata s) internal pure returns (uint256[5] calldata row) {
        assembly ("memory-safe") {
            row := s
        }
    }

    /// @dev The verifier of `binding`; UnknownBinding if none is set.
    function _verifierOf(uint8 binding) internal view returns (address v) {
        v = _verifiers[binding];
        if (v == address(0)) revert BillingSettlement__UnknownBinding(binding);
    }

    /// @dev One ETH charge, every check but its proof, then its effects; returns the wei moved.
    ///      Checks: signals in the field, nullifier unused, an open account that accepts the
    ///      tariff, per-request and daily limits, balance. Effects: spend the nullifier, debit
    ///      available then reserved, count the day's spend, emit ChargeSettled. The caller
    ///      verifies the proof(s) afterwards and reverts everything if that fails; the proof is
    ///      checked last because it is by far the most expensive check.
    function _charge(uint256[5] calldata s) internal returns (uint256 weiAmount) {
        _checkSignals(s);
        uint256 nullifier = s[3];
        uint256 tenantKey = s[4];
        if (_nullifiers[nullifier]) revert BillingSettlement__NullifierUsed(nullifier);
        Account storage acct = _accounts[tenantKey];
        Account memory a = acct; // one read of the account's three slots
        if (a.controller == address(0)) revert BillingSettlement__UnknownAccount(tenantKey);
        if (!_tariffs[tenantKey][s[2]]) revert BillingSettlement__TariffNotAccepted(tenantKey, s[2]);
        if (s[1] > type(uint96).max / WEI_PER_MICRO) revert BillingSettlement__AmountTooLarge(s[1]);
        weiAmount = s[1] * WEI_PER_MICRO;
        if (weiAmount > a.perRequestLimit) {
            revert BillingSettlement__PerRequestLimitExceeded(a.perRequestLimit, weiAmount);
        }
        uint64 today = uint64(block.timestamp / 1 days);
        uint256 spent = (a.spentDay == today ? a.spentToday : 0) + weiAmount;
        if (spent > a.dailyLimit) revert BillingSettlement__DailyLimitExceeded(a.dailyLimit, spent);
        uint256 balance = uint256(a.available) + a.reserved;
        if (weiAmount > balance) revert BillingSettlement__InsufficientBalance(balance, weiAmount);

        _nullifiers[nullifier] = true;
        uint256 available = a.available;
        if (weiAmount > available) {
            acct.reserved = uint96(balance - weiAmount); // the shortfall comes out of reserved
            available = 0;
        } else {
            available -= weiAmount;
        }
        // spent <= dailyLimit and available <= the old available: both fit 96 bits
        acct.available = uint96(available);
        acct.spentToday = uint96(spent);
        acct.spentDay = today;
        emit ChargeSettled(tenantKey, nullifier, s[0], s[1], weiAmount);
    }

    /// @dev A v2 charge: the state keys in the field, the v1 checks and effects on its first five
    ///      signals, then WindowAdvanced.
    function _chargeV2(uint256[7] calldata s) internal returns (uint256 weiAmount) {
        _checkStateKeys(s);
        weiAmount = _charge(_v1Row(s));
        emit WindowAdvanced(s[4], s[5], s[6], s[3]);
    }

    function _settle(Proof calldata proof, uint256[5] calldata s) internal {
        uint256 weiAmount = _charge(s);
        IBillingVerifier v = IBillingVerifier(_verifierOf(BINDING_V1));
        if (!v.verifyProof(proof.a, proof.b, proof.c, s)) revert BillingSettlement__InvalidProof();
        _payeeOwed += uint96(weiAmount);
    }

    function _settleV2(Proof calldata proof, uint256[7] calldata s) internal {
        uint256 weiAmount = _chargeV2(s);
        IBillingVerifierV2 v = IBillingVerifierV2(_verifierOf(BINDING_V2));
        if (!v.verifyProof(proof.a, proof.b, proof.c, s)) revert BillingSettlement__InvalidProof();
        _payeeOwed += uint96(weiAmount);
    }

    function _settleBatch(Proof[] calldata proofs, uint256[5][] calldata s) internal {
        uint256 n = proofs.length;
        if (n == 0 || n != s.length) revert BillingSettlement__BadBatch(n, s.length);
        address v = _verifierOf(BINDING_V1);
        // Check and apply each charge in order, so a repeated nullifier and the day's running
        // total are seen; then verify all proofs with one pairing. A failed batch proof reverts
        // every effect above (no ETH moves here), and cheap checks fail before the pairing.
        uint256 owed;
        for (uint256 i = 0; i < n; ++i) {
            owed += _charge(s[i]);
        }
        if (!_verifyBatchOfThisCall(v, IBillingVerifier.verifyBatch.selector)) {
            revert BillingSettlement__InvalidBatchProof(n);
        }
        _payeeOwed += uint96(owed);
    }

    function _settleBatchV2(Proof[] calldata proofs, uint256[7][] calldata s) internal {
        uint256 n = proofs.length;
        if (n == 0 || n != s.length) revert BillingSettlement__BadBatch(n, s.length);
        address v = _verifierOf(BINDING_V2);
        uint256 owed; // as _settleBatch
        for (uint256 i = 0; i < n; ++i) {
            owed += _chargeV2(s[i]);
        }
        if (!_verifyBatchOfThisCall(v, IBillingVerifierV2.verifyBatch.selector)) {
            revert BillingSettlement__InvalidBatchProof(n);
        }
        _payeeOwed += uint96(owed);
    }

    /// @dev target.verifyBatch(proofs, publicSignals) for the running settleBatch(V2) call, by
    ///      forwarding this call's argument bytes under `selector`: settleBatch and the v1
    ///      verifier's verifyBatch both take (Proof[], uint256[5][]), settleBatchV2 and v2's both
    ///      (Proof[], uint256[7][]), so the verifier decodes exactly the arrays this contract
    ///      decoded (same bytes, same offsets), without re-encoding the words of every proof.
    ///      Only meaningful inside settleBatch(V2). Fails closed: false unless the call
    ///      succeeded and returned exactly true.
    function _verifyBatchOfThisCall(address target, bytes4 selector) internal view returns (bool ok) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let size := calldatasize()
            mstore(ptr, selector)
            calldatacopy(add(ptr, 4), 4, sub(size, 4))
            ok := staticcall(gas(), target, ptr, size, 0, 0x20)
            ok := and(ok, and(eq(returndatasize(), 0x20), eq(mload(0), 1)))
        }
    }

    function _anchorCharge(Proof calldata proof, uint256[5] calldata s) internal {
        _checkSignals(s);
        if (_nullifiers[s[3]]) revert BillingSettlement__NullifierUsed(s[3]);
        IBillingVerifier v = IBillingVerifier(_verifierOf(BINDING_V1));
        if (!v.verifyProof(proof.a, proof.b, proof.c, s)) revert BillingSettlement__InvalidProof();
        _nullifiers[s[3]] = true;
        emit ChargeAnchored(s[4], s[3], s[0], s[1]);
    }

    function _anchorChargeV2(Proof calldata proof, uint256[7] calldata s) internal {
        _checkSignals(_v1Row(s));
        _checkStateKeys(s);
        if (_nullifiers[s[3]]) revert BillingSettlement__NullifierUsed(s[3]);
        IBillingVerifierV2 v = IBillingVerifierV2(_verifierOf(BINDING_V2));
        if (!v.verifyProof(proof.a, proof.b, proof.c, s)) revert BillingSettlement__InvalidProof();
        _nullifiers[s[3]] = true;
        emit ChargeAnchored(s[4], s[3], s[0], s[1]);
        emit WindowAdvanced(s[4], s[5], s[6], s[3]);
    }

    /// @dev A correction of a settled charge: checks first, the proof last, then its effects
    ///      (the credit leaves the payee's earnings for the tenant's available balance).
    function _settleCorrection(Proof calldata proof, uint256[9] calldata s) internal {
        for (uint256 i = 0; i < 9; ++i) {
            if (s[i] >= SNARK_SCALAR_FIELD) revert BillingSettlement__SignalOutOfField(i);
        }
        uint256 nullifier = s[3];
        uint256 tenantKey = s[4];
        if (_nullifiers[nullifier]) revert BillingSettlement__NullifierUsed(nullifier);
        if (!_nullifiers[s[8]]) revert BillingSettlement__NotSettled(s[8]);
        Account storage acct = _accounts[tenantKey];
        if (acct.controller == address(0)) revert BillingSettlement__UnknownAccount(tenantKey);
        if (!_tariffs[tenantKey][s[2]]) revert BillingSettlement__TariffNotAccepted(tenantKey, s[2]);
        if (s[1] > type(uint96).max / WEI_PER_MICRO) revert BillingSettlement__AmountTooLarge(s[1]);
        uint256 weiAmount = s[1] * WEI_PER_MICRO;
        uint256 owed = _payeeOwed;
        if (weiAmount > owed) revert BillingSettlement__CreditExceedsEarnings(owed, weiAmount);
        uint256 available = uint256(acct.available) + weiAmount;
        if (available > type(uint96).max) revert BillingSettlement__AmountTooLarge(available);
        IBillingVerifierV2C v = IBillingVerifierV2C(_verifierOf(BINDING_V2C));
        if (!v.verifyProof(proof.a, proof.b, proof.c, s)) revert BillingSettlement__InvalidProof();
        _nullifiers[nullifier] = true;
        _payeeOwed = uint96(owed - weiAmount);
        acct.available = uint96(available);
        emit ChargeCorrected(tenantKey, nullifier, s[8], s[0], s[1], weiAmount);
        emit WindowAdvanced(tenantKey, s[5], s[6], nullifier);
    }

    function _anchorTreeHead(bytes32 root, uint256 size) internal {
        if (size <= lastAnchoredSize) revert BillingSettlement__TreeHeadNotNewer(lastAnchoredSize, size);
        lastAnchoredSize = size;
        emit TreeHeadAnchored(root, size, msg.sender);
    }

    // ------------------------------------------------------------------ payee and owner

    function _withdrawPayee() internal {
        uint256 amount = _retiredPayeeCredit[msg.sender];
        _retiredPayeeCredit[msg.sender] = 0;
        if (msg.sender == payee) {
            amount += _payeeOwed;
            _payeeOwed = 0;
        }
        if (amount == 0) revert BillingSettlement__NothingToWithdraw();
        emit PayeeWithdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    function _addAttester(address attester) internal {
        if (attester == address(0)) revert BillingSettlement__ZeroAddress();
        if (attesterStatus[attester] != AttesterStatus.None) revert BillingSettlement__AttesterExists(attester);
        attesterStatus[attester] = AttesterStatus.Active;
        emit AttesterAdded(attester);
    }

    function _revokeAttester(address attester) internal {
        if (attesterStatus[attester] != AttesterStatus.Active) revert BillingSettlement__NotAttester(attester);
        attesterStatus[attester] = AttesterStatus.Revoked;
        emit AttesterRevoked(attester);
    }

    /// @dev The verifier must report the binding's N_PUBLIC (a raw staticcall: an address
    ///      without code, or a contract without N_PUBLIC, is a mismatch, not a bare revert).
    function _setVerifier(uint8 binding, address verifier) internal {
        uint256 want;
        if (binding == BINDING_V1) want = N_PUBLIC_V1;
        else if (binding == BINDING_V2) want = N_PUBLIC_V2;
        else if (binding == BINDING_V2C) want = N_PUBLIC_V2C;
        else revert BillingSettlement__UnknownBinding(binding);
        if (verifier != address(0)) {
            (bool ok, bytes memory out) = verifier.staticcall(abi.encodeCall(IBillingVerifier.N_PUBLIC, ()));
            if (!ok || out.length != 32 || abi.decode(out, (uint256)) != want) {
                revert BillingSettlement__VerifierMismatch(binding, verifier);
            }
        }
        emit VerifierSet(binding, _verifiers[binding], verifier);
        _verifiers[binding] = verifier;
    }

    function _setPayee(address newPayee) internal {
        if (newPayee == address(0)) revert BillingSettlement__ZeroAddress();
        address previous = payee;
        _retiredPayeeCredit[previous] += _payeeOwed;
        _payeeOwed = 0;
        payee = newPayee;
        emit PayeeChanged(previous, newPayee);
    }

    function _transferOwnership(address pending) internal {
        if (pending == address(0)) revert BillingSettlement__ZeroAddress();
        pendingOwner = pending;
        emit OwnershipTransferStarted(owner, pending);
    }

    function _acceptOwnership() internal {
        if (msg.sender != pendingOwner) revert BillingSettlement__NotPendingOwner(msg.sender);
        emit OwnershipTransferred(owner, msg.sender);
        owner = msg.sender;
        pendingOwner = address(0);
    }

    function _send(address to, uint256 amount) internal {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert BillingSettlement__TransferFailed(to, amount);
    }

    // ------------------------------------------------------------------ views

    function _balanceOf(uint256 tenantKey) internal view returns (uint256 available, uint256 reserved, uint256 total) {
        Account storage acct = _accounts[tenantKey];
        available = acct.available;
        reserved = acct.reserved;
        total = available + reserved;
    }

    function _payeeBalance(address who) internal view returns (uint256) {
        return _retiredPayeeCredit[who] + (who == payee ? _payeeOwed : 0);
    }
}
