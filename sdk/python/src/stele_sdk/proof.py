"""Offline verification of ``tx_getProof`` bundles against a genesis file, in Python alone.

Mirrors ``ledger::proof::TxProof::verify`` and ``stele verify-proof`` (node/src/cli/
verify_proof.rs): the validator set in force at each height is rebuilt from the genesis through
the bundle's validator changes, each certified header must name that set's digest and carry a
quorum (``2n/3 + 1``) of distinct members' COMMIT signatures checked under ZIP-215 (the node's
rule, :mod:`stele_sdk.ed25519`), and the transaction and its receipt must sit under the
header's roots at the same position. A :class:`~stele_sdk.errors.ProofInvalid` carries the same
reason text the Rust verifier gives.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import merkle
from .encoding import U64_MAX, Reader, Writer, from_hex, sha3_256, to_hex
from .errors import DecodeError, GenesisError, InvalidInput, ProofInvalid
from .types import (
    AddValidator,
    Address,
    PublicKey,
    Receipt,
    RemoveValidator,
    Role,
    SignedTransaction,
    ValidatorInfo,
    _decode_chain_id,
    check_chain_id,
)

__all__ = [
    "BlockHeader",
    "CertifiedHeader",
    "CommitCertificate",
    "Genesis",
    "IncludedTx",
    "TxProof",
    "ValidatorChange",
    "VerifiedTxProof",
    "VoteSignature",
    "validator_set_digest",
    "verify_tx_proof",
]

VOTE_DOMAIN = b"stele/vote/v1"
VALIDATOR_SET_DOMAIN = b"stele/validator-set/v1"
VALIDATOR_SET_MAX = 1024
COMMIT = 2


# --- the borsh types of a bundle ----------------------------------------------------------


@dataclass(frozen=True)
class BlockHeader:
    """``ledger::BlockHeader``; its sha3-256 is the block hash the certificate signs."""

    chain_id: str
    height: int
    previous_hash: bytes
    timestamp_ms: int
    proposer: PublicKey
    tx_root: bytes
    receipts_root: bytes
    state_root: bytes
    validator_set_digest: bytes

    def encode(self) -> bytes:
        return (
            Writer()
            .string(self.chain_id)
            .u64(self.height)
            .fixed(self.previous_hash)
            .u64(self.timestamp_ms)
            .fixed(self.proposer.raw)
            .fixed(self.tx_root)
            .fixed(self.receipts_root)
            .fixed(self.state_root)
            .fixed(self.validator_set_digest)
            .getvalue()
        )

    def hash(self) -> bytes:
        return sha3_256(self.encode())

    @classmethod
    def decode_from(cls, reader: Reader) -> "BlockHeader":
        return cls(
            chain_id=_decode_chain_id(reader),
            height=reader.u64(),
            previous_hash=reader.fixed(32),
            timestamp_ms=reader.u64(),
            proposer=PublicKey.decode_from(reader),
            tx_root=reader.fixed(32),
            receipts_root=reader.fixed(32),
            state_root=reader.fixed(32),
            validator_set_digest=reader.fixed(32),
        )


@dataclass(frozen=True)
class VoteSignature:
    """One validator's COMMIT signature, naming the signer by its index in the set."""

    validator: int
    signature: bytes


@dataclass(frozen=True)
class CommitCertificate:
    """``consensus::CommitCertificate``: COMMIT signatures over (chain, height, view, digest)."""

    chain_id: str
    height: int
    view: int
    digest: bytes
    signatures: List[VoteSignature]

    def signing_bytes(self) -> bytes:
        """borsh of (``"stele/vote/v1"``, chain id, {kind COMMIT, height, view, digest})."""
        return (
            Writer()
            .vec_u8(VOTE_DOMAIN)
            .string(self.chain_id)
            .u8(COMMIT)
            .u64(self.height)
            .u64(self.view)
            .fixed(self.digest)
            .getvalue()
        )

    @classmethod
    def decode_from(cls, reader: Reader) -> "CommitCertificate":
        chain_id = _decode_chain_id(reader)
        height = reader.u64()
        view = reader.u64()
        digest = reader.fixed(32)
        signatures = reader.vec(lambda r: VoteSignature(r.u32(), r.fixed(64)))
        return cls(chain_id, height, view, digest, signatures)


@dataclass(frozen=True)
class CertifiedHeader:
    header: BlockHeader
    certificate: CommitCertificate

    @classmethod
    def decode_from(cls, reader: Reader) -> "CertifiedHeader":
        header = BlockHeader.decode_from(reader)
        return cls(header, CommitCertificate.decode_from(reader))


@dataclass(frozen=True)
class IncludedTx:
    transaction: SignedTransaction
    tx_proof: merkle.InclusionProof
    receipt: Receipt
    receipt_proof: merkle.InclusionProof

    @classmethod
    def decode_from(cls, reader: Reader) -> "IncludedTx":
        transaction = SignedTransaction.decode_from(reader)
        tx_proof = merkle.InclusionProof.decode_from(reader)
        receipt = Receipt.decode_from(reader)
        return cls(transaction, tx_proof, receipt, merkle.InclusionProof.decode_from(reader))


@dataclass(frozen=True)
class ValidatorChange:
    block: CertifiedHeader
    changes: List[IncludedTx]

    @classmethod
    def decode_from(cls, reader: Reader) -> "ValidatorChange":
        block = CertifiedHeader.decode_from(reader)
        return cls(block, reader.vec(IncludedTx.decode_from))


@dataclass(frozen=True)
class TxProof:
    """``ledger::proof::TxProof``: the bytes of a bundle's ``proof`` field."""

    validator_changes: List[ValidatorChange]
    block: CertifiedHeader
    included: IncludedTx

    @classmethod
    def decode(cls, data: Union[bytes, str]) -> "TxProof":
        raw = from_hex(data, what="proof") if isinstance(data, str) else bytes(data)
        reader = Reader(raw)
        changes = reader.vec(ValidatorChange.decode_from)
        block = CertifiedHeader.decode_from(reader)
        included = IncludedTx.decode_from(reader)
        reader.finish()
        return cls(changes, block, included)

    def tx_hash(self) -> bytes:
        return self.included.transaction.hash()


# --- the genesis --------------------------------------------------------------------------

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z")

_PARAMS_REQUIRED = (
    "max_block_txs",
    "max_block_bytes",
    "max_tx_bytes",
    "max_key_bytes",
    "max_value_bytes",
    "validator_change_delay",
    "view_timeout_ms",
    "view_timeout_max_ms",
)
_PARAMS_U32 = ("max_block_txs", "max_tx_bytes", "max_key_bytes", "max_value_bytes", "min_validators")


def _unique_pairs(pairs: Any) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate field `{name}`")
        result[name] = value
    return result


def _fields(value: Any, field: str, required: Sequence[str], optional: Sequence[str] = ()) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise GenesisError(field, "expected an object")
    for name in value:
        if name not in required and name not in optional:
            raise GenesisError(field, f"unknown field `{name}`")
    for name in required:
        if name not in value:
            raise GenesisError(field, f"missing field `{name}`")
    return value


def _integer(value: Any, field: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise GenesisError(field, f"expected an integer from 0 to {maximum}, got {value!r}")
    return value


@dataclass(frozen=True)
class Genesis:
    """What a proof is checked against, read from ``genesis.json`` with the node's checks
    (genesis/src/document.rs): chain id, the first validator set, the change delay."""

    chain_id: str
    genesis_time_ms: int
    validators: List[ValidatorInfo]
    accounts: List[Tuple[Address, int, List[Role]]]
    params: Dict[str, int]

    @property
    def validator_change_delay(self) -> int:
        return self.params["validator_change_delay"]

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "Genesis":
        """Reads and checks a genesis file."""
        with open(os.fspath(path), encoding="utf-8") as file:
            return cls.from_json(file.read())

    @classmethod
    def from_json(cls, document: Union[str, bytes, Mapping[str, Any]]) -> "Genesis":
        """Checks a genesis document (its text, or the parsed object)."""
        if isinstance(document, (str, bytes)):
            try:
                value = json.loads(document, object_pairs_hook=_unique_pairs)
            except ValueError as error:
                raise GenesisError(".", f"not JSON: {error}") from None
        else:
            value = dict(document)
        top = _fields(value, ".", ("chain_id", "genesis_time", "validators", "params"), ("accounts",))
        try:
            chain_id = check_chain_id(top["chain_id"])
        except InvalidInput as error:
            raise GenesisError("chain_id", str(error)) from None
        genesis_time_ms = _parse_time(top["genesis_time"])
        if not isinstance(top["validators"], list):
            raise GenesisError("validators", "expected a list")
        validators: List[ValidatorInfo] = []
        for index, entry in enumerate(top["validators"]):
            field = f"validators[{index}]"
            fields = _fields(entry, field, ("name", "public_key", "peer_id"))
            try:
                info = ValidatorInfo(fields["name"], PublicKey.parse(fields["public_key"]), fields["peer_id"])
            except InvalidInput as error:
                raise GenesisError(field, str(error)) from None
            validators.append(info)
        accounts: List[Tuple[Address, int, List[Role]]] = []
        raw_accounts = top.get("accounts", [])
        if not isinstance(raw_accounts, list):
            raise GenesisError("accounts", "expected a list")
        for index, entry in enumerate(raw_accounts):
            field = f"accounts[{index}]"
            fields = _fields(entry, field, ("address",), ("balance", "roles"))
            try:
                address = Address.parse(fields["address"])
                roles_value = fields.get("roles", [])
                if not isinstance(roles_value, list) or not all(isinstance(role, str) for role in roles_value):
                    raise InvalidInput("roles must be a list of role names")
                roles = [Role.parse(role) for role in roles_value]
            except InvalidInput as error:
                raise GenesisError(field, str(error)) from None
            balance = _integer(fields.get("balance", 0), f"{field}.balance", U64_MAX)
            accounts.append((address, balance, roles))
        params_value = _fields(top["params"], "params", _PARAMS_REQUIRED, ("min_validators",))
        params = {
            name: _integer(params_value[name], f"params.{name}", 2**32 - 1 if name in _PARAMS_U32 else U64_MAX)
            for name in _PARAMS_REQUIRED
        }
        params["min_validators"] = _integer(params_value.get("min_validators", 4), "params.min_validators", 2**32 - 1)
        genesis = cls(chain_id, genesis_time_ms, validators, accounts, params)
        genesis._validate()
        return genesis

    def _validate(self) -> None:
        """``GenesisDocument::to_ledger`` and ``Genesis::validate``."""
        if not self.validators:
            raise GenesisError("validators", "at least one validator is required")
        for index, validator in enumerate(self.validators):
            problem = validator.validate()
            if problem is not None:
                raise GenesisError(f"validators[{index}]", problem)
            for earlier, other in enumerate(self.validators[:index]):
                if (
                    other.name == validator.name
                    or other.public_key == validator.public_key
                    or other.peer_id == validator.peer_id
                ):
                    raise GenesisError(
                        f"validators[{index}]", f"repeats the name, public key or peer id of validators[{earlier}]"
                    )
        problem = _params_problem(self.params)
        if problem is not None:
            raise GenesisError("params", problem)
        if len(self.validators) > VALIDATOR_SET_MAX:
            raise GenesisError(
                "validators", f"a validator set holds at most {VALIDATOR_SET_MAX} members, got {len(self.validators)}"
            )
        seen = set()
        supply = 0
        for index, (address, balance, _) in enumerate(self.accounts):
            if address in seen:
                raise GenesisError(f"accounts[{index}]", f"address {address} appears twice")
            seen.add(address)
            supply += balance
            if supply > U64_MAX:
                raise GenesisError(
                    f"accounts[{index}]", "balances sum to more than the largest supply (2^64 - 1)"
                )


def _params_problem(params: Dict[str, int]) -> Optional[str]:
    checks = [
        (params["max_block_txs"] > 0, "max_block_txs must be at least 1"),
        (params["max_tx_bytes"] >= 256, "max_tx_bytes must be at least 256"),
        (params["max_block_bytes"] >= params["max_tx_bytes"], "max_block_bytes must be at least max_tx_bytes"),
        (params["max_key_bytes"] > 0, "max_key_bytes must be at least 1"),
        (params["max_value_bytes"] < params["max_tx_bytes"], "max_value_bytes must be below max_tx_bytes"),
        (params["validator_change_delay"] >= 1, "validator_change_delay must be at least 1"),
        (
            params["view_timeout_ms"] > 0 and params["view_timeout_max_ms"] >= params["view_timeout_ms"],
            "view_timeout_ms must be positive and at most view_timeout_max_ms",
        ),
        (params["min_validators"] >= 1, "min_validators must be at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            return message
    return None


def _parse_time(value: Any) -> int:
    hint = "(expected RFC 3339, e.g. 2026-11-23T10:00:00Z)"
    if not isinstance(value, str):
        raise GenesisError("genesis_time", f"expected a string {hint}")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise GenesisError("genesis_time", f"{value!r} is not a timestamp {hint}")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction = match.group(7) or ""
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone.utc)
    except ValueError as error:
        raise GenesisError("genesis_time", f"{error} {hint}") from None
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    if moment < epoch:
        raise GenesisError("genesis_time", "must be after 1970-01-01")
    seconds = (moment - epoch) // datetime.timedelta(seconds=1)
    millis = int((fraction + "000")[:3]) if fraction else 0
    return seconds * 1000 + millis


# --- validator sets -----------------------------------------------------------------------


def validator_set_digest(keys: Sequence[PublicKey]) -> bytes:
    """sha3-256("stele/validator-set/v1" || borsh of the member keys): what headers name."""
    writer = Writer().u32(len(keys))
    for key in keys:
        writer.fixed(key.raw)
    return sha3_256(VALIDATOR_SET_DOMAIN, writer.getvalue())


def _validator_set(validators: Sequence[ValidatorInfo]) -> List[PublicKey]:
    """``ValidatorSet::new``: non-empty, at most 1024 members, no repeated key."""
    keys = [validator.public_key for validator in validators]
    if not keys:
        raise _SetError("a validator set needs at least one member")
    if len(keys) > VALIDATOR_SET_MAX:
        raise _SetError(f"a validator set holds at most {VALIDATOR_SET_MAX} members, got {len(keys)}")
    seen = set()
    for position, key in enumerate(keys):
        if key.raw in seen:
            raise _SetError(f"validator {position} repeats the key of an earlier validator")
        seen.add(key.raw)
    return keys


class _SetError(Exception):
    pass


class _Schedule:
    """``ledger::ValidatorSchedule``: the sets in force from given heights on."""

    def __init__(self, validators: List[ValidatorInfo]) -> None:
        self.entries: List[Tuple[int, List[ValidatorInfo]]] = [(0, list(validators))]

    def validators_at(self, height: int) -> List[ValidatorInfo]:
        for start, validators in reversed(self.entries):
            if start <= height:
                return validators
        return self.entries[0][1] if self.entries else []

    def latest(self) -> List[ValidatorInfo]:
        return list(self.entries[-1][1]) if self.entries else []

    def schedule(self, height: int, validators: List[ValidatorInfo]) -> None:
        self.entries = [entry for entry in self.entries if entry[0] < height]
        self.entries.append((height, validators))


# --- verification -------------------------------------------------------------------------


def _certificate_problem(
    certificate: CommitCertificate, chain_id: str, keys: List[PublicKey], height: int, digest: bytes
) -> Optional[str]:
    """``CommitCertificate::verify``'s error text, or ``None`` when it holds."""
    if certificate.chain_id != chain_id:
        return f"certificate is for chain {certificate.chain_id}, expected {chain_id}"
    if certificate.height != height:
        return f"certificate is for height {certificate.height}, expected {height}"
    if certificate.digest != digest:
        return f"certificate is for block {to_hex(certificate.digest)}, expected {to_hex(digest)}"
    seen = [False] * len(keys)
    for vote in certificate.signatures:
        if vote.validator >= len(keys):
            return f"signer index {vote.validator} is not a member of the {len(keys)}-validator set"
        if seen[vote.validator]:
            return f"validator {vote.validator} signed twice"
        seen[vote.validator] = True
    # PBFT §4.2: a commit needs matching votes from a quorum, strictly more than two thirds.
    quorum = 2 * len(keys) // 3 + 1
    if len(certificate.signatures) < quorum:
        return f"{len(certificate.signatures)} signatures, a quorum needs {quorum}"
    message = certificate.signing_bytes()
    for vote in certificate.signatures:
        if not keys[vote.validator].verify(message, vote.signature):
            return f"signature of validator {vote.validator} does not verify"
    return None


def _check_certified(chain_id: str, block: CertifiedHeader, schedule: _Schedule) -> None:
    header = block.header
    height = header.height
    if header.chain_id != chain_id:
        raise ProofInvalid("wrong_chain", f"height {height}: header of chain {header.chain_id}, expected {chain_id}")
    try:
        keys = _validator_set(schedule.validators_at(height))
    except _SetError as error:
        raise ProofInvalid("header", f"height {height}: validator set: {error}") from None
    if header.validator_set_digest != validator_set_digest(keys):
        raise ProofInvalid(
            "header",
            f"height {height}: the header names another validator set (a validator change is missing or wrong)",
        )
    problem = _certificate_problem(block.certificate, chain_id, keys, height, header.hash())
    if problem is not None:
        raise ProofInvalid("header", f"height {height}: certificate: {problem}")


def _check_included(header: BlockHeader, included: IncludedTx) -> None:
    def fail(reason: str) -> ProofInvalid:
        return ProofInvalid("inclusion", f"height {header.height}: {reason}")

    tx_hash = included.transaction.hash()
    if not included.tx_proof.verify(header.tx_root, tx_hash):
        raise fail("the transaction is not under the header's tx_root")
    if included.receipt.tx_hash != tx_hash:
        raise fail("the receipt is for another transaction")
    if (included.receipt_proof.index, included.receipt_proof.total) != (
        included.tx_proof.index,
        included.tx_proof.total,
    ):
        raise fail("the receipt is not at the transaction's position")
    if not included.receipt_proof.verify(header.receipts_root, included.receipt.hash()):
        raise fail("the receipt is not under the header's receipts_root")


def _verify_proof(proof: TxProof, genesis: Genesis) -> None:
    """``TxProof::verify``."""
    schedule = _Schedule(genesis.validators)
    target = proof.block.header.height
    previous = 0
    for change in proof.validator_changes:
        height = change.block.header.height

        def fail(reason: str, height: int = height) -> ProofInvalid:
            return ProofInvalid("change", f"height {height}: {reason}")

        if height <= previous or height >= target:
            raise fail("validator changes must be in increasing height order, before the block")
        previous = height
        _check_certified(genesis.chain_id, change.block, schedule)
        if not change.changes:
            raise fail("a change block without changes")
        last_index: Optional[int] = None
        for included in change.changes:
            _check_included(change.block.header, included)
            if last_index is not None and included.tx_proof.index <= last_index:
                raise fail("changes must be in block order")
            last_index = included.tx_proof.index
            if included.receipt.failure is not None:
                raise fail("a failed transaction changes nothing")
            following = schedule.latest()
            payload = included.transaction.transaction.payload
            if isinstance(payload, AddValidator):
                following.append(payload.validator)
            elif isinstance(payload, RemoveValidator):
                following = [v for v in following if v.public_key != payload.public_key]
            else:
                raise fail("not a validator change")
            schedule.schedule(height + genesis.validator_change_delay, following)
    _check_certified(genesis.chain_id, proof.block, schedule)
    _check_included(proof.block.header, proof.included)


@dataclass(frozen=True)
class VerifiedTxProof:
    """What a valid bundle proves."""

    chain_id: str
    tx_hash: str
    height: int
    index: int
    transaction: SignedTransaction
    receipt: Receipt
    signatures: int
    validator_changes: int

    @property
    def succeeded(self) -> bool:
        return self.receipt.failure is None


def verify_tx_proof(bundle: Union[Mapping[str, Any], str], genesis: Union[Genesis, str, "os.PathLike[str]"]) -> VerifiedTxProof:
    """Checks a ``tx_getProof`` bundle (the JSON object, or its text) against a genesis (a
    :class:`Genesis` or the path of a ``genesis.json``). Raises :class:`ProofInvalid` with the
    reason ``stele verify-proof`` gives; :class:`GenesisError` for an unusable genesis."""
    if not isinstance(genesis, Genesis):
        genesis = Genesis.load(genesis)
    if isinstance(bundle, str):
        try:
            bundle = json.loads(bundle)
        except ValueError as error:
            raise ProofInvalid("undecodable", f"not a proof bundle: {error}") from None
    if not isinstance(bundle, Mapping):
        raise ProofInvalid("undecodable", "not a proof bundle: expected a JSON object")
    expected = {"chain_id", "tx_hash", "height", "index", "validator_changes", "proof"}
    missing = expected - set(bundle)
    if missing:
        raise ProofInvalid("undecodable", f"not a proof bundle: missing fields {sorted(missing)}")
    try:
        claimed_hash = from_hex(bundle["tx_hash"], 32, "tx_hash")
        claimed_chain = check_chain_id(bundle["chain_id"])
        raw = from_hex(bundle["proof"], what="proof")
    except InvalidInput as error:
        raise ProofInvalid("undecodable", f"not a proof bundle: {error}") from None
    for name, maximum in (("height", U64_MAX), ("index", 2**32 - 1), ("validator_changes", U64_MAX)):
        value = bundle[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
            raise ProofInvalid("undecodable", f"not a proof bundle: {name} is not an integer in range")
    try:
        proof = TxProof.decode(raw)
    except DecodeError as error:
        raise ProofInvalid("undecodable", f"not a transaction proof: {error}") from None
    claims = [
        (proof.tx_hash() == claimed_hash, "tx_hash"),
        (proof.block.header.height == bundle["height"], "height"),
        (proof.block.header.chain_id == claimed_chain, "chain_id"),
        (proof.included.tx_proof.index == bundle["index"], "index"),
    ]
    for holds, field in claims:
        if not holds:
            raise ProofInvalid("claim", f"the bundle's {field} does not match its proof")
    _verify_proof(proof, genesis)
    return VerifiedTxProof(
        chain_id=claimed_chain,
        tx_hash=to_hex(claimed_hash),
        height=proof.block.header.height,
        index=proof.included.tx_proof.index,
        transaction=proof.included.transaction,
        receipt=proof.included.receipt,
        signatures=len(proof.block.certificate.signatures),
        validator_changes=len(proof.validator_changes),
    )
