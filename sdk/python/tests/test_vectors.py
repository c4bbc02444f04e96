"""sdk/vectors.json (generated and checked by node/tests/sdk_vectors.rs) checked against the SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import stele_sdk
from stele_sdk import merkle
from stele_sdk.encoding import from_hex

_FILE = json.loads((Path(__file__).resolve().parents[2] / "vectors.json").read_text(encoding="utf-8"))
TRANSACTIONS = _FILE["transactions"]
PROOF_CASES = _FILE["proofs"]["cases"]

PAYLOAD_KINDS = {"transfer", "mint", "put_record", "delete_record", "grant_role", "revoke_role",
                 "add_validator", "remove_validator"}


def test_format(vectors: Dict[str, Any]) -> None:
    assert vectors["format"] == "stele-sdk-vectors/1"


def test_keys(vectors: Dict[str, Any]) -> None:
    for vector in vectors["keys"]:
        key = stele_sdk.SigningKey(from_hex(vector["seed"]))
        assert str(key.public_key) == vector["public_key"], vector["name"]
        assert str(key.address) == vector["address"], vector["name"]
        assert str(stele_sdk.Address.of(vector["public_key"])) == vector["address"], vector["name"]


def test_every_payload_kind_has_a_vector(vectors: Dict[str, Any]) -> None:
    assert PAYLOAD_KINDS <= {vector["payload"]["type"] for vector in vectors["transactions"]}


@pytest.mark.parametrize("vector", TRANSACTIONS, ids=[vector["name"] for vector in TRANSACTIONS])
def test_transactions(vector: Dict[str, Any]) -> None:
    key = stele_sdk.SigningKey(from_hex(vector["seed"]))
    payload = stele_sdk.payload_from_json(vector["payload"])
    assert payload.to_json() == vector["payload"]
    transaction = stele_sdk.Transaction(vector["chain_id"], key.public_key, vector["nonce"], payload)
    assert stele_sdk.to_hex(transaction.signing_bytes()) == vector["signing_bytes"]
    signed = transaction.sign(key)
    assert stele_sdk.to_hex(signed.signature) == vector["signature"]
    assert signed.to_hex() == vector["encoding"]
    assert signed.hash_hex() == vector["hash"]
    assert signed.verify_signature()
    decoded = stele_sdk.SignedTransaction.decode(vector["encoding"])
    assert decoded == signed
    assert decoded.transaction.sender() == key.address


def test_public_keys(vectors: Dict[str, Any]) -> None:
    kinds = set()
    for vector in vectors["public_keys"]:
        verdict = stele_sdk.check_public_key(from_hex(vector["bytes"]))
        assert verdict == vector["rejected"], vector["name"]
        kinds.add(verdict)
        if verdict is None:
            stele_sdk.PublicKey(from_hex(vector["bytes"]))
        else:
            with pytest.raises(stele_sdk.InvalidInput):
                stele_sdk.PublicKey(from_hex(vector["bytes"]))
    assert {None, "weak", "non_canonical", "invalid"} <= kinds


def test_signatures_follow_zip215(vectors: Dict[str, Any]) -> None:
    for vector in vectors["signatures"]:
        verdict = stele_sdk.verify(from_hex(vector["public_key"]), from_hex(vector["message"]),
                                   from_hex(vector["signature"]))
        assert verdict == vector["valid"], vector["name"]


def _strict_verdict(vector: Dict[str, Any]) -> bool:
    """What OpenSSL (through `cryptography`) says: RFC 8032's cofactorless, canonical rule."""
    try:
        Ed25519PublicKey.from_public_bytes(from_hex(vector["public_key"])).verify(
            from_hex(vector["signature"]), from_hex(vector["message"]))
        return True
    except (InvalidSignature, ValueError):
        return False


def test_the_vectors_hold_signatures_a_strict_verifier_refuses(vectors: Dict[str, Any]) -> None:
    # The reason the SDK carries its own verifier: a standard library disagrees with the node
    # on these, so using it would make the SDK refuse proofs the node accepts.
    disagreements = [vector["name"] for vector in vectors["signatures"] if _strict_verdict(vector) != vector["valid"]]
    assert "r_plus_torsion_1" in disagreements
    assert any(name.startswith("r_non_canonical") for name in disagreements)
    by_name = {vector["name"]: vector for vector in vectors["signatures"]}
    assert by_name["rfc8032"]["valid"] and _strict_verdict(by_name["rfc8032"])


def test_merkle(vectors: Dict[str, Any]) -> None:
    for vector in vectors["merkle"]:
        items = [from_hex(item) for item in vector["items"]]
        root = merkle.root(items)
        assert stele_sdk.to_hex(root) == vector["root"]
        for index, proof_json in enumerate(vector["proofs"]):
            proof = merkle.InclusionProof(proof_json["index"], proof_json["total"],
                                          [from_hex(sibling) for sibling in proof_json["siblings"]])
            assert proof.verify(root, items[index])
            assert proof == merkle.prove(items, index)
            assert not proof.verify(root, bytes(32))
            if proof.siblings:
                padded = merkle.InclusionProof(proof.index, proof.total, proof.siblings + [bytes(32)])
                assert not padded.verify(root, items[index])


def test_proof_genesis_loads(vectors: Dict[str, Any]) -> None:
    genesis = stele_sdk.Genesis.from_json(vectors["proofs"]["genesis"])
    assert genesis.chain_id == "stele-test"
    assert len(genesis.validators) == 4
    assert genesis.genesis_time_ms == 1_700_000_000_000


def _cases(vectors: Dict[str, Any]) -> Any:
    return vectors["proofs"]["cases"]


def test_proof_cases_cover_both_verdicts(vectors: Dict[str, Any]) -> None:
    verdicts = {case["valid"] for case in _cases(vectors)}
    assert verdicts == {True, False}
    names = {case["name"] for case in _cases(vectors) if case["valid"]}
    assert "zip215_commit_signature_r_plus_torsion" in names


@pytest.mark.parametrize("case", PROOF_CASES, ids=[case["name"] for case in PROOF_CASES])
def test_proof_case(vectors: Dict[str, Any], case: Dict[str, Any]) -> None:
    genesis = stele_sdk.Genesis.from_json(case.get("genesis", vectors["proofs"]["genesis"]))
    if case["valid"]:
        verified = stele_sdk.verify_tx_proof(case["bundle"], genesis)
        assert verified.tx_hash == case["bundle"]["tx_hash"]
        assert verified.height == case["bundle"]["height"]
        return
    with pytest.raises(stele_sdk.ProofInvalid) as caught:
        stele_sdk.verify_tx_proof(case["bundle"], genesis)
    assert caught.value.kind == case["kind"], case["name"]
    if case["kind"] != "undecodable":
        # The Rust verifier's own words (borsh's decode messages aside).
        assert caught.value.reason == case["reason"], case["name"]
