"""The SDK against a real 4-validator `stele` network (the `network` fixture of conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import time
from typing import Any, Dict, List

import pytest

import stele_sdk
from stele_sdk import (
    AddValidator,
    Address,
    DeleteRecord,
    GrantRole,
    Mint,
    PutRecord,
    RemoveValidator,
    RevokeRole,
    Role,
    SigningKey,
    Transaction,
    Transfer,
    ValidatorInfo,
)

from conftest import Network

WAIT_MS = 30_000


def _wait_committed(client: stele_sdk.Client, tx_hash: str, timeout_s: float = 30.0) -> Dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.transaction(tx_hash)
        if status["status"] == "committed":
            return status
        assert time.monotonic() < deadline, f"{tx_hash} not committed within {timeout_s} s: {status}"
        time.sleep(0.2)


def _wait_height(client: stele_sdk.Client, height: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.status()["height"] < height:
        assert time.monotonic() < deadline, f"height {height} not reached within {timeout_s} s"
        time.sleep(0.2)


@pytest.fixture(scope="session")
def every_kind(network: Network, faucet: SigningKey) -> Dict[str, Any]:
    """Submits one transaction of every payload kind (signed by the faucet, which holds every
    role) and waits for each; returns their results and the keys involved."""
    someone = SigningKey.generate()
    newcomer = SigningKey.generate()
    node_key = SigningKey.generate()
    validator = ValidatorInfo("sdk-validator", newcomer.public_key, stele_sdk.peer_id_of(node_key.public_key))
    payloads: List[stele_sdk.Payload] = [
        Transfer(someone.address, 1_000),
        Mint(someone.address, 77),
        PutRecord(b"sdk/greeting", b"hello from python"),
        DeleteRecord(b"sdk/greeting"),
        GrantRole(someone.address, Role.WRITE),
        RevokeRole(someone.address, Role.WRITE),
        AddValidator(validator),
        RemoveValidator(newcomer.public_key),
    ]
    results: List[Dict[str, Any]] = []
    with stele_sdk.Client(network.rpc) as client:
        chain_id = client.chain_id()
        nonce = client.nonce(faucet.address)
        for offset, payload in enumerate(payloads):
            signed = Transaction(chain_id, faucet.public_key, nonce + offset, payload).sign(faucet)
            result = client.submit_and_wait(signed, timeout_ms=WAIT_MS)
            results.append({"payload": payload, "signed": signed, "result": result})
    return {"results": results, "someone": someone, "newcomer": newcomer}


def test_status_matches_the_genesis(client: stele_sdk.Client, network: Network) -> None:
    genesis = stele_sdk.Genesis.load(network.genesis_path)
    status = client.status()
    assert status["chain_id"] == genesis.chain_id
    assert status["height"] >= 1
    validators = client.validators(1)
    assert validators["quorum"] == 3 and validators["max_faulty"] == 1
    assert [entry["public_key"] for entry in validators["validators"]] == [str(v.public_key) for v in genesis.validators]
    # The node's own checks: its stored chain scrubbed, its peers compared, no divergence.
    assert status["scrub"]["enabled"] and status["agreement"]["enabled"]
    assert client.divergences() == []


def test_every_payload_kind_commits_with_its_receipt(client: stele_sdk.Client, every_kind: Dict[str, Any]) -> None:
    kinds = set()
    for entry in every_kind["results"]:
        result, signed = entry["result"], entry["signed"]
        assert result["status"] == "committed", result
        assert result["hash"] == signed.hash_hex()
        assert result["receipt"] == {"tx_hash": signed.hash_hex(), "success": True, "failure": None}, entry["payload"]
        kinds.add(entry["payload"].TYPE)
        # The node serves the very bytes the SDK signed.
        block = client.block(result["height"])
        served = block["transactions"][result["index"]]
        assert served["raw"] == signed.to_hex()
        assert served["payload"] == entry["payload"].to_json()
        assert stele_sdk.SignedTransaction.decode(served["raw"]) == signed
    assert kinds == {"transfer", "mint", "put_record", "delete_record", "grant_role", "revoke_role",
                     "add_validator", "remove_validator"}


def test_state_at_past_heights(client: stele_sdk.Client, every_kind: Dict[str, Any]) -> None:
    results = every_kind["results"]
    someone = every_kind["someone"]
    transfer_height = results[0]["result"]["height"]
    put_height = results[2]["result"]["height"]
    delete_height = results[3]["result"]["height"]
    grant_height = results[4]["result"]["height"]
    revoke_height = results[5]["result"]["height"]
    assert client.account(someone.address, transfer_height - 1)["balance"] == 0
    assert client.account(someone.address, transfer_height)["balance"] >= 1_000
    assert client.account(someone.address)["balance"] == 1_077
    assert client.record("sdk/greeting", put_height)["value"] == stele_sdk.to_hex(b"hello from python")
    if delete_height > put_height:
        assert client.record(b"sdk/greeting", delete_height)["value"] is None
    assert client.record("sdk/greeting")["value"] is None
    assert "write" in client.account(someone.address, grant_height)["roles"]
    if revoke_height > grant_height:
        assert "write" not in client.account(someone.address, revoke_height)["roles"]
    proof = client.state_proof(account=someone.address, height=transfer_height)
    assert proof["height"] == transfer_height and proof["header"]["height"] == transfer_height
    assert proof["certificate"]["height"] == transfer_height and proof["value"] is not None
    absent = client.state_proof(record=b"sdk/never-written")
    assert absent["value"] is None


def test_validator_changes_show_at_their_heights(client: stele_sdk.Client, every_kind: Dict[str, Any]) -> None:
    results = every_kind["results"]
    newcomer = str(every_kind["newcomer"].public_key)
    added_at = results[6]["result"]["height"]
    removed_at = results[7]["result"]["height"]
    delay = 2  # the generated genesis's params.validator_change_delay
    _wait_height(client, removed_at + delay)
    with_newcomer = client.validators(added_at + delay)
    assert newcomer in [entry["public_key"] for entry in with_newcomer["validators"]]
    assert with_newcomer["quorum"] == 4
    if removed_at > added_at:
        before = client.validators(added_at + delay - 1)
        assert newcomer not in [entry["public_key"] for entry in before["validators"]]
    after = client.validators(removed_at + delay)
    assert newcomer not in [entry["public_key"] for entry in after["validators"]]


def test_submit_a_batch(client: stele_sdk.Client, faucet: SigningKey, every_kind: Dict[str, Any]) -> None:
    chain_id = client.chain_id()
    nonce = client.nonce(faucet.address)
    receiver = SigningKey.generate().address
    good = [Transaction(chain_id, faucet.public_key, nonce + i, Transfer(receiver, 10 + i)).sign(faucet)
            for i in range(3)]
    wrong_chain = Transaction("another-chain", faucet.public_key, nonce + 3, Transfer(receiver, 1)).sign(faucet)
    answers = client.submit_batch([*good, wrong_chain])
    assert answers[:3] == [signed.hash_hex() for signed in good]
    assert isinstance(answers[3], stele_sdk.WrongChain) and answers[3].code == 1003
    for signed in good:
        status = _wait_committed(client, signed.hash_hex())
        assert status["receipt"]["success"]
    assert client.account(receiver)["balance"] == 10 + 11 + 12


def test_node_errors_carry_their_codes(client: stele_sdk.Client, faucet: SigningKey, every_kind: Dict[str, Any]) -> None:
    chain_id = client.chain_id()
    receiver = SigningKey.generate().address
    committed = every_kind["results"][0]["signed"]
    with pytest.raises(stele_sdk.NonceTooLow) as too_low:
        client.submit(Transaction(chain_id, faucet.public_key, 0, Transfer(receiver, 1)).sign(faucet))
    assert too_low.value.code == stele_sdk.ErrorCode.NONCE_TOO_LOW == 1004
    nonce = client.nonce(faucet.address)
    with pytest.raises(stele_sdk.WrongChain):
        client.submit(Transaction("other-chain", faucet.public_key, nonce, Transfer(receiver, 1)).sign(faucet))
    signed = Transaction(chain_id, faucet.public_key, nonce, Transfer(receiver, 1)).sign(faucet)
    forged = stele_sdk.SignedTransaction(signed.transaction, bytes([signed.signature[0] ^ 1]) + signed.signature[1:])
    with pytest.raises(stele_sdk.BadSignature) as bad:
        client.submit(forged)
    assert bad.value.code == 1002
    with pytest.raises(stele_sdk.MalformedTransaction):
        client.submit(b"\x01\x02\x03")
    with pytest.raises(stele_sdk.NonceTooHigh):
        client.submit(Transaction(chain_id, faucet.public_key, nonce + 1_000_000, Transfer(receiver, 1)).sign(faucet))
    stranger = SigningKey.generate()
    with pytest.raises(stele_sdk.PermissionDenied) as denied:
        client.submit(Transaction(chain_id, stranger.public_key, 0, Mint(stranger.address, 5)).sign(stranger))
    assert denied.value.code == 1006
    with pytest.raises(stele_sdk.NotFound) as missing:
        client.block(client.status()["height"] + 1000)
    assert missing.value.code == 1011
    with pytest.raises(stele_sdk.NotFound):
        client.tx_proof(b"\x00" * 32)
    with pytest.raises(stele_sdk.InvalidParams) as invalid:
        client.call("chain_getBlocks", 5, 2)
    assert invalid.value.code == -32602
    with pytest.raises(stele_sdk.MethodNotFound):
        client.call("chain_noSuchMethod")
    assert client.transaction(committed.hash())["status"] == "committed"
    assert client.transaction(b"\x07" * 32)["status"] == "unknown"


def test_bad_input_to_the_sdk_raises_clear_errors(client: stele_sdk.Client, tmp_path: Any) -> None:
    with pytest.raises(stele_sdk.InvalidInput, match="address"):
        Address.from_hex("0x1234")
    with pytest.raises(stele_sdk.InvalidInput, match="amount"):
        Transfer(Address(bytes(20)), -1)
    with pytest.raises(stele_sdk.InvalidInput, match="amount"):
        Transfer(Address(bytes(20)), 2**64)
    with pytest.raises(stele_sdk.InvalidInput, match="chain id"):
        Transaction("Not-A-Chain", SigningKey.generate().public_key, 0, Transfer(Address(bytes(20)), 1))
    with pytest.raises(stele_sdk.InvalidInput, match="weak"):
        stele_sdk.PublicKey(bytes([1]) + bytes(31))
    with pytest.raises(stele_sdk.InvalidInput, match="role"):
        GrantRole(Address(bytes(20)), "root")  # type: ignore[arg-type]
    with pytest.raises(stele_sdk.InvalidInput, match="signer"):
        Transaction("stele-local", SigningKey.generate().public_key, 0, Transfer(Address(bytes(20)), 1)).sign(
            SigningKey.generate())
    with pytest.raises(stele_sdk.InvalidInput):
        client.blocks(5, 2)
    with pytest.raises(stele_sdk.InvalidInput):
        client.account("not an address")
    with pytest.raises(stele_sdk.InvalidInput):
        client.state_proof()
    with pytest.raises(stele_sdk.InvalidInput):
        stele_sdk.Client("ftp://127.0.0.1:1")
    with pytest.raises(stele_sdk.DecodeError):
        stele_sdk.SignedTransaction.decode(b"\x00" * 10)
    with pytest.raises(stele_sdk.TransportError):
        with stele_sdk.Client("http://127.0.0.1:9", timeout=2) as closed:
            closed.status()


def test_key_files_round_trip_with_the_cli(network: Network, tmp_path: Any) -> None:
    # A key file the CLI writes loads in the SDK...
    cli_file = tmp_path / "cli.key.json"
    made = subprocess.run([str(network.binary), "keys", "generate", "--out", str(cli_file), "--json"],
                          capture_output=True, text=True, timeout=30)
    assert made.returncode == 0, made.stderr
    printed = json.loads(made.stdout)
    loaded = stele_sdk.load_key(cli_file)
    assert str(loaded.public_key) == printed["public_key"] and str(loaded.address) == printed["address"]
    # ...and one the SDK writes (mode 0600, never overwritten) loads in the CLI.
    sdk_file = tmp_path / "sdk.key.json"
    key = stele_sdk.generate_key_file(sdk_file)
    assert os.stat(sdk_file).st_mode & 0o777 == 0o600
    shown = subprocess.run([str(network.binary), "keys", "show", str(sdk_file), "--json"],
                           capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["public_key"] == str(key.public_key)
    assert json.loads(shown.stdout)["peer_id"] == stele_sdk.peer_id_of(key.public_key)
    with pytest.raises(stele_sdk.KeyFileError, match="refusing to overwrite"):
        stele_sdk.generate_key_file(sdk_file)
    assert stele_sdk.load_key(sdk_file).public_key == key.public_key
    os.chmod(sdk_file, 0o644)
    with pytest.raises(stele_sdk.KeyFileError, match="other users"):
        stele_sdk.load_key(sdk_file)
    edited = tmp_path / "edited.key.json"
    document = json.loads(cli_file.read_text())
    document["address"] = "0x" + "00" * 20
    edited.write_text(json.dumps(document))
    os.chmod(edited, 0o600)
    with pytest.raises(stele_sdk.KeyFileError, match="address does not match"):
        stele_sdk.load_key(edited)


def test_blocks_by_height_hash_and_pages(client: stele_sdk.Client, every_kind: Dict[str, Any]) -> None:
    head = client.status()["height"]
    blocks = list(client.iter_blocks(1, head))
    assert [block["header"]["height"] for block in blocks] == list(range(1, head + 1))
    for earlier, later in zip(blocks, blocks[1:]):
        assert later["header"]["previous_hash"] == earlier["header"]["hash"]
    middle = blocks[len(blocks) // 2]
    assert client.block(middle["header"]["hash"]) == middle
    assert client.block(middle["header"]["height"]) == middle
    assert client.blocks(head + 5, head + 10) == []


def test_subscription_sees_blocks_in_order(client: stele_sdk.Client) -> None:
    async def follow() -> List[Dict[str, Any]]:
        headers: List[Dict[str, Any]] = []
        async with client.subscribe_blocks() as subscription:
            while len(headers) < 4:
                headers.append(await asyncio.wait_for(subscription.__anext__(), timeout=30))
        return headers

    headers = asyncio.run(asyncio.wait_for(follow(), timeout=120))
    heights = [header["height"] for header in headers]
    assert heights == list(range(heights[0], heights[0] + 4)), heights
    for header in headers:
        assert "tx_count" in header
        assert client.block(header["height"])["header"]["hash"] == header["hash"]
    for earlier, later in zip(headers, headers[1:]):
        assert later["previous_hash"] == earlier["hash"]


@pytest.mark.asyncio
async def test_subscription_as_async_for(client: stele_sdk.Client) -> None:
    seen: List[int] = []

    async def follow() -> None:
        async with client.subscribe_blocks() as blocks:
            async for header in blocks:
                seen.append(header["height"])
                if len(seen) == 2:
                    break

    await asyncio.wait_for(follow(), timeout=60)
    assert seen[1] == seen[0] + 1


def test_a_proof_from_the_node_verifies_offline(
    client: stele_sdk.Client, faucet: SigningKey, network: Network, every_kind: Dict[str, Any]
) -> None:
    # After the validator changes of `every_kind`, so the bundle must carry and prove them.
    removed_at = every_kind["results"][7]["result"]["height"]
    _wait_height(client, removed_at + 2)
    signed = client.build(faucet, Transfer(SigningKey.generate().address, 3))
    committed = client.submit_and_wait(signed, timeout_ms=WAIT_MS)
    bundle = client.tx_proof(signed.hash())
    assert bundle["tx_hash"] == signed.hash_hex() and bundle["height"] == committed["height"]
    genesis = stele_sdk.Genesis.load(network.genesis_path)
    verified = stele_sdk.verify_tx_proof(bundle, genesis)
    assert verified.succeeded and verified.transaction == signed
    assert verified.validator_changes == bundle["validator_changes"] >= 2
    assert verified.signatures >= 3
    # The same bundle, from a file, against the genesis path; and the node's own verifier agrees.
    bundle_file = network.dir / "proof.json"
    bundle_file.write_text(json.dumps(bundle))
    stele_sdk.verify_tx_proof(bundle_file.read_text(), network.genesis_path)
    checked = subprocess.run([str(network.binary), "verify-proof", str(bundle_file), "--genesis",
                              str(network.genesis_path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr

    # Tampered: a claim, and flipped bytes across the whole proof (each must fail, as the node's
    # verifier fails them).
    with pytest.raises(stele_sdk.ProofInvalid) as claim:
        stele_sdk.verify_tx_proof({**bundle, "height": bundle["height"] + 1}, genesis)
    assert claim.value.kind == "claim"
    raw = bytearray(stele_sdk.from_hex(bundle["proof"]))
    generator = random.Random(17)
    positions = sorted(generator.sample(range(len(raw)), 40)) + [0, len(raw) - 1]
    for position in positions:
        tampered = bytearray(raw)
        tampered[position] ^= 1 << generator.randrange(8)
        with pytest.raises(stele_sdk.ProofInvalid):
            stele_sdk.verify_tx_proof({**bundle, "proof": stele_sdk.to_hex(tampered)}, genesis)
    # A genesis with another validator set refuses the genuine bundle.
    document = json.loads(network.genesis_path.read_text())
    document["validators"][0]["public_key"] = str(SigningKey.generate().public_key)
    with pytest.raises(stele_sdk.ProofInvalid) as other_set:
        stele_sdk.verify_tx_proof(bundle, stele_sdk.Genesis.from_json(document))
    assert other_set.value.kind == "header"
