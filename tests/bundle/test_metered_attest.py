"""Metered requests (binding v2) through the one attest path, the store's window chain and verify.

Real parts: the v2 circuit's wasm and zkey (native prover), a SQLite store file, the Python
Groth16 verifier's native twin. Races are forced, not hoped for: an attester whose first
signature waits on a barrier of all callers makes each sign on the same window head before any
of them logs, so only the store's check inside the commit can keep the chain from forking.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest
from support import V2, needs_v2, set_in
from support.metered import (
    INFERENCE,
    attest,
    event,
    flat,
    request,
    store_at,
)
from support.store import BarrierAttester, signing_only
from vbill.attest import attest_event
from vbill.bindings import BINDING_V1, BINDING_V2
from vbill.bundle.keys import Attester
from vbill.ingest import Proving
from vbill.ledger.store import Conflict, Store
from vbill.verify.trust import TrustSet, file_sha256
from vbill.verify.verify import default_check, verify_bundle
from vbill.zk.native_prover import open_prover


def test_inference_attests_to_554_and_verifies(
    tmp_path: Path, attester: Attester, v2: Proving, v2_trust: TrustSet
) -> None:
    store = store_at(tmp_path, attester)
    done = attest(store, attester, v2, INFERENCE)
    bundle = done.stored.bundle
    assert done.created and bundle["billing"]["expected_charge_micros"] == 554
    bp = bundle["attestation"]["billing_proof"]
    assert bp["binding_version"] == BINDING_V2 and len(bp["public_signals"]) == 7
    window = bundle["billing"]["window"]
    assert window["seq"] == 1 and window["before"]["seq"] == 0
    assert window["after"] == {
        "seq": 1,
        "units": {"input_tokens": "156", "output_tokens": "412"},
        "amount": "554000000",
        "charge": "554",
    }
    result = verify_bundle(bundle, trust=v2_trust, check=default_check())
    assert result.valid, result
    assert result.incircuit_binding_verification.binding_version == BINDING_V2
    # the v1 key alone does not make it valid: each binding needs its own key
    from vbill import paths

    v1_only = TrustSet().with_(attesters=[attester.address], vkey_files=[paths.VKEY])
    assert not verify_bundle(bundle, trust=v1_only, check=default_check()).valid


def test_same_payload_replays_other_payload_conflicts(
    tmp_path: Path, attester: Attester, v2: Proving
) -> None:
    store = store_at(tmp_path, attester)
    first = attest(store, attester, v2, event(INFERENCE, "e1"))
    again = attest(store, attester, v2, event(INFERENCE, "e1"))
    assert not again.created and again.stored.bundle == first.stored.bundle
    with pytest.raises(Conflict):
        attest(store, attester, v2, event(INFERENCE, "e1", input_tokens=1, output_tokens=1))
    head = store.window_head(("tenant_acme", "2026-05", "llm-secure-7b"))
    assert head is not None and head.seq == 1  # neither the replay nor the conflict moved it


def test_second_event_starts_from_the_first_ones_state(
    tmp_path: Path, attester: Attester, v2: Proving, v2_trust: TrustSet
) -> None:
    store = store_at(tmp_path, attester)
    a = attest(store, attester, v2, event(INFERENCE, "e1")).stored.bundle
    b = attest(store, attester, v2, event(INFERENCE, "e2")).stored.bundle
    assert b["billing"]["window"]["before"] == a["billing"]["window"]["after"]
    assert (
        b["attestation"]["billing_proof"]["public_signals"][5]
        == (a["attestation"]["billing_proof"]["public_signals"][6])
    )
    assert b["billing"]["window"]["after"]["charge"] == "1108"
    assert verify_bundle(b, trust=v2_trust, check=default_check()).valid


@pytest.mark.parametrize(
    ("path", "value", "failing", "reason"),
    [
        # a window total it did not earn: the after-state is recomputed from the before-state
        (
            ["billing", "window", "after", "charge"],
            "999",
            "billing_check",
            "billed_billing_v2.billing.window.after: not the state the event leaves",
        ),
        # another before-state: another prev_state_key, another charge base
        (
            ["billing", "window", "before", "units", "output_tokens"],
            "5",
            "billing_check",
            # same tier, same charge: the after-state it claims is not before + this event
            "billed_billing_v2.billing.window.after: not the state the event leaves",
        ),
        (
            ["billing", "window", "seq"],
            2,
            "billing_check",
            "billed_billing_v2.billing.window.seq: 2 but before.seq + 1 is 1",
        ),
        # the signals are recomputed, never read: a stated state key is compared, then refused
        (["attestation", "billing_proof", "public_signals", 6], "1", "incircuit", "signals[6]"),
        (
            ["attestation", "billing_proof", "binding_version"],
            BINDING_V1,
            "incircuit",
            "binding_version",
        ),
    ],
)
def test_tampered_window_or_signals_fail(
    tmp_path: Path,
    attester: Attester,
    v2: Proving,
    v2_trust: TrustSet,
    path: list[Any],
    value: Any,
    failing: str,
    reason: str,
) -> None:
    bundle = attest(store_at(tmp_path, attester), attester, v2, INFERENCE).stored.bundle
    edited = set_in(bundle, tuple(path), value)
    result = verify_bundle(edited, trust=v2_trust, check=default_check())
    assert not result.valid
    verdict = (
        result.billing_check
        if failing == "billing_check"
        else result.incircuit_binding_verification
    )
    assert not verdict.valid, result
    assert reason in (verdict.reason or ""), verdict.reason
    assert not result.verification.valid  # the signature covers all of it too


def assert_chain(store: Store, n: int) -> list[dict[str, Any]]:
    """seq 1..n, each starting from the previous state, the total the sum of the charges."""
    bundles = [s.bundle for s in store.window_bundles(("tenant_acme", "2026-05", "llm-secure-7b"))]
    assert [b["billing"]["window"]["seq"] for b in bundles] == list(range(1, n + 1))
    for prev, cur in itertools.pairwise(bundles):
        assert cur["billing"]["window"]["before"] == prev["billing"]["window"]["after"]
    assert int(bundles[-1]["billing"]["window"]["after"]["charge"]) == sum(
        b["billing"]["expected_charge_micros"] for b in bundles
    )
    return bundles


def test_threads_attesting_into_one_window_never_fork_or_skip(
    tmp_path: Path, attester: Attester, v2: Proving
) -> None:
    """Threads with a Store each: all sign on the genesis head at once (barrier), so every
    loser must be signed again from the new head inside the commit, then proved from it."""
    n = 3
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    store_at(tmp_path, attester)

    def go(i: int) -> None:
        try:
            racing = BarrierAttester(attester, barrier)
            attest(store_at(tmp_path, attester), racing, v2, event(INFERENCE, f"t{i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    bundles = assert_chain(store_at(tmp_path, attester), n)
    assert [b["billing"]["expected_charge_micros"] for b in bundles] == [554] * n


def test_threads_sharing_one_store_queue_on_the_window(
    tmp_path: Path, attester: Attester, v2: Proving
) -> None:
    """The service's shape: one Store, its commits ordering them on the window."""
    store = store_at(tmp_path, attester)
    threads = [
        threading.Thread(target=attest, args=(store, attester, v2, event(INFERENCE, f"s{i}")))
        for i in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_chain(store, 3)


def _attest_in_process(home: str, key: str, i: int, barrier: Any, results: Any) -> None:
    from eth_account import Account

    try:
        attester = Attester(Account.from_key(key))
        with contextlib.closing(open_prover(1, binding=BINDING_V2)) as prover:
            proving = Proving(prover, file_sha256(V2.vkey))
            req = event(INFERENCE, f"p{i}")
            racing = BarrierAttester(attester, barrier)
            done = attest(store_at(Path(home), attester), racing, proving, req)
        results.put(("ok", done.stored.bundle["billing"]["window"]["seq"]))
    except BaseException as exc:
        results.put(("error", repr(exc)))


def test_processes_attesting_into_one_window_never_fork_or_skip(
    tmp_path: Path, attester: Attester
) -> None:
    """Only the database can decide across processes: the head is re-checked in the commit's
    transaction (BEGIN IMMEDIATE), and a process that signed on a stale head signs again."""
    needs_v2()
    n = 2
    store_at(tmp_path, attester)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    key = attester.account.key.hex()
    procs = [
        ctx.Process(target=_attest_in_process, args=(str(tmp_path), key, i, barrier, results))
        for i in range(n)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    assert sorted(outcomes) == [("ok", 1), ("ok", 2)], outcomes
    assert_chain(store_at(tmp_path, attester), n)


def test_unpriced_usage_is_refused_before_anything_is_stored(
    tmp_path: Path, attester: Attester, v2: Proving
) -> None:
    from vbill.errors import InputError

    store = store_at(tmp_path, attester, funded=False)
    bad = request({"calls": flat("1")}, {"calls": 1, "images": 2})
    with pytest.raises(InputError) as caught:
        attest(store, attester, v2, bad)
    assert caught.value.field == "meter_event.usage.images"
    assert store.counts()["bundles"] == 0 and store.tenants() == []


def test_metered_request_without_a_v2_key_is_an_environment_error(
    tmp_path: Path, attester: Attester
) -> None:
    from vbill.errors import ToolError

    with pytest.raises(ToolError, match="v2"):
        attest_event(
            INFERENCE,
            store=store_at(tmp_path, attester),
            attester=attester,
            provers=signing_only(),
        )


def test_batch_verifies_v1_and_v2_bundles_together_and_names_a_bad_proof(
    tmp_path: Path,
    attester: Attester,
    v2: Proving,
    pilot_bundle: dict[str, Any],
) -> None:
    """One native verifier per key: a batch of both bindings, a forged v2 proof bisected out."""
    from vbill import paths
    from vbill.verify.batch import native_batch_check, verify_many
    from vbill.verify.verify import native_available

    if not native_available():
        pytest.skip("no native verifier here")
    store = store_at(tmp_path, attester)
    a = attest(store, attester, v2, event(INFERENCE, "b1")).stored.bundle
    b = attest(store, attester, v2, event(INFERENCE, "b2")).stored.bundle
    forged = copy.deepcopy(b)  # b's signals with a's proof: well-formed, does not verify
    forged["attestation"]["billing_proof"]["proof"] = a["attestation"]["billing_proof"]["proof"]
    trust = TrustSet().with_(attesters=[attester.address], vkey_files=[paths.VKEY, V2.vkey])
    items = [("v1", pilot_bundle), ("a", a), ("b", b), ("forged", forged)]
    results = dict(verify_many(items, trust=trust, check=native_batch_check, workers=1))
    assert {k: r.valid for k, r in results.items()} == {
        "v1": True,
        "a": True,
        "b": True,
        "forged": False,
    }
    assert "batch" in (results["forged"].incircuit_binding_verification.reason or "")


def test_default_trust_holds_v2_key_only_when_the_manifest_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One key per binding: v2's file is trusted by default only under `bindings[v2]` with
    its exact SHA-256 (a stray or half-built key never is)."""
    import dataclasses
    import json

    from vbill import bindings, paths
    from vbill.verify import trust

    needs_v2()
    vkey = tmp_path / "vkey-v2.json"
    vkey.write_text(V2.vkey.read_text())
    sha = file_sha256(vkey)
    monkeypatch.setitem(bindings.ARTEFACTS, BINDING_V2, dataclasses.replace(V2, vkey=vkey))
    manifest = tmp_path / "manifest.json"
    monkeypatch.setattr(paths, "MANIFEST", manifest)
    for record in (None, {}, {"bindings": {}}, {"bindings": {BINDING_V2: {"vkey_sha256": "00"}}}):
        manifest.unlink(missing_ok=True)
        if record is not None:
            manifest.write_text(json.dumps(record))
        assert trust._binding_vkeys() == [], record
    manifest.write_text(json.dumps({"bindings": {BINDING_V2: {"vkey_sha256": sha}}}))
    assert trust._binding_vkeys() == [vkey]
