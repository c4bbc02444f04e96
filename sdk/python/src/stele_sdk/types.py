"""The ledger's types, encoded byte for byte as the node encodes them (ledger/src/*.rs).

Every constructor checks its fields and raises :class:`InvalidInput`; every ``decode`` refuses
what the node's borsh decoding refuses and raises :class:`DecodeError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Dict, Optional, Union

from . import ed25519
from .encoding import Reader, Writer, check_u64, from_hex, sha3_256, to_hex
from .errors import DecodeError, InvalidInput

__all__ = [
    "AddValidator",
    "Address",
    "DeleteRecord",
    "Failure",
    "GrantRole",
    "Mint",
    "Payload",
    "PublicKey",
    "PutRecord",
    "Receipt",
    "RemoveValidator",
    "RevokeRole",
    "Role",
    "SignedTransaction",
    "Transaction",
    "Transfer",
    "ValidatorInfo",
    "check_chain_id",
    "payload_from_json",
    "peer_id_of",
]

TX_DOMAIN = b"stele/tx/v1"
ADDRESS_DOMAIN = b"stele/address/v1"
CHAIN_ID_MAX_LEN = 64
VALIDATOR_NAME_MAX = 64
PEER_ID_MAX = 128

_CHAIN_ID = re.compile(r"[a-z0-9-]+")


def check_chain_id(chain_id: object) -> str:
    """A chain id the node accepts (1 to 64 bytes of ``a-z 0-9 -``), else :class:`InvalidInput`."""
    if not isinstance(chain_id, str):
        raise InvalidInput(f"chain id must be a string, got {type(chain_id).__name__}")
    if not 1 <= len(chain_id.encode("utf-8")) <= CHAIN_ID_MAX_LEN:
        raise InvalidInput(f"chain id must be 1 to {CHAIN_ID_MAX_LEN} bytes, got {len(chain_id.encode('utf-8'))}")
    if not _CHAIN_ID.fullmatch(chain_id):
        raise InvalidInput(f"chain id {chain_id!r} may contain only a-z, 0-9 and '-'")
    return chain_id


def _decode_chain_id(reader: Reader) -> str:
    text = reader.string()
    try:
        return check_chain_id(text)
    except InvalidInput as error:
        raise DecodeError(str(error)) from None


def _bytes_arg(value: object, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidInput(f"{what} must be bytes or text, got {type(value).__name__}")


@dataclass(frozen=True)
class PublicKey:
    """An ed25519 public key the node accepts: on the curve, not of small order, canonical."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 32:
            raise InvalidInput("a public key is 32 bytes")
        problem = ed25519.check_public_key(self.raw)
        if problem == "weak":
            raise InvalidInput(f"weak (small-order) ed25519 public key {to_hex(self.raw)}")
        if problem == "non_canonical":
            raise InvalidInput(f"non-canonical ed25519 public key encoding {to_hex(self.raw)}")
        if problem is not None:
            raise InvalidInput(f"not a valid ed25519 public key: {to_hex(self.raw)}")

    @classmethod
    def from_hex(cls, text: str) -> "PublicKey":
        return cls(from_hex(text, 32, "public key"))

    @classmethod
    def parse(cls, value: Union["PublicKey", str, bytes]) -> "PublicKey":
        """From a ``PublicKey``, 0x-hex text or 32 bytes."""
        if isinstance(value, PublicKey):
            return value
        if isinstance(value, str):
            return cls.from_hex(value)
        if isinstance(value, (bytes, bytearray)):
            return cls(bytes(value))
        raise InvalidInput(f"expected a public key, got {type(value).__name__}")

    @classmethod
    def decode_from(cls, reader: Reader) -> "PublicKey":
        raw = reader.fixed(32)
        try:
            return cls(raw)
        except InvalidInput as error:
            raise DecodeError(str(error)) from None

    def verify(self, message: bytes, signature: bytes) -> bool:
        """The node's verdict on ``signature`` over ``message`` (ZIP-215)."""
        return ed25519.verify_zip215(self.raw, message, signature)

    def address(self) -> "Address":
        return Address.of(self)

    def hex(self) -> str:
        return to_hex(self.raw)

    def __str__(self) -> str:
        return to_hex(self.raw)


@dataclass(frozen=True)
class Address:
    """An account: the first 20 bytes of sha3-256("stele/address/v1" || public key)."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 20:
            raise InvalidInput("an address is 20 bytes")

    @classmethod
    def of(cls, public_key: Union[PublicKey, str, bytes]) -> "Address":
        """The address a public key controls."""
        key = PublicKey.parse(public_key)
        return cls(sha3_256(ADDRESS_DOMAIN, key.raw)[:20])

    @classmethod
    def from_hex(cls, text: str) -> "Address":
        return cls(from_hex(text, 20, "address"))

    @classmethod
    def parse(cls, value: Union["Address", str, bytes]) -> "Address":
        """From an ``Address``, 0x-hex text or 20 bytes."""
        if isinstance(value, Address):
            return value
        if isinstance(value, str):
            return cls.from_hex(value)
        if isinstance(value, (bytes, bytearray)):
            return cls(bytes(value))
        raise InvalidInput(f"expected an address, got {type(value).__name__}")

    def hex(self) -> str:
        return to_hex(self.raw)

    def __str__(self) -> str:
        return to_hex(self.raw)


class Role(IntEnum):
    """A permission; each payload kind needs one."""

    TRANSACT = 0
    MINT = 1
    WRITE = 2
    ADMIN = 3

    @property
    def text(self) -> str:
        """The lowercase name the JSON uses (``transact``, ``mint``, ``write``, ``admin``)."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: Union["Role", str, int]) -> "Role":
        if isinstance(value, Role):
            return value
        if isinstance(value, str):
            for role in cls:
                if role.text == value:
                    return role
            raise InvalidInput(f"unknown role {value!r} (expected transact, mint, write or admin)")
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
            return cls(value)
        raise InvalidInput(f"unknown role {value!r}")


def _decode_role(reader: Reader) -> Role:
    tag = reader.u8()
    if tag > 3:
        raise DecodeError(f"unknown role {tag}")
    return Role(tag)


@dataclass(frozen=True)
class ValidatorInfo:
    """A validator: a name, its consensus key and its libp2p peer id (base58 text)."""

    name: str
    public_key: PublicKey
    peer_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not isinstance(self.peer_id, str):
            raise InvalidInput("validator name and peer_id must be strings")
        if not isinstance(self.public_key, PublicKey):
            object.__setattr__(self, "public_key", PublicKey.parse(self.public_key))

    def validate(self) -> Optional[str]:
        """What the node says is wrong with the name or peer id (``ValidatorInfo::validate``)."""
        if not 1 <= len(self.name.encode("utf-8")) <= VALIDATOR_NAME_MAX:
            return f"name must be 1 to {VALIDATOR_NAME_MAX} bytes"
        if not all(c.isascii() and (c.isalnum() or c in "-_.") for c in self.name):
            return f"name {self.name!r} may contain only ASCII letters, digits, '-', '_' and '.'"
        if not 1 <= len(self.peer_id.encode("utf-8")) <= PEER_ID_MAX:
            return f"peer_id must be 1 to {PEER_ID_MAX} bytes"
        if not all(c.isascii() and c.isalnum() for c in self.peer_id):
            return f"peer_id {self.peer_id!r} is not base58 text"
        return None

    def encode_into(self, writer: Writer) -> None:
        writer.string(self.name).fixed(self.public_key.raw).string(self.peer_id)

    @classmethod
    def decode_from(cls, reader: Reader) -> "ValidatorInfo":
        name = reader.string()
        key = PublicKey.decode_from(reader)
        peer_id = reader.string()
        return cls(name, key, peer_id)

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "public_key": str(self.public_key), "peer_id": self.peer_id}

    @classmethod
    def from_json(cls, value: Any) -> "ValidatorInfo":
        if not isinstance(value, dict) or set(value) != {"name", "public_key", "peer_id"}:
            raise InvalidInput(f"a validator is {{name, public_key, peer_id}}, got {value!r}")
        return cls(value["name"], PublicKey.parse(value["public_key"]), value["peer_id"])


# --- payloads -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Credit:
    """The fields of the payloads that credit ``amount`` to ``to``."""

    to: Address
    amount: int
    TYPE = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "to", Address.parse(self.to))
        check_u64(self.amount, "amount")

    def encode_fields(self, writer: Writer) -> None:
        writer.fixed(self.to.raw).u64(self.amount)

    def to_json(self) -> Dict[str, Any]:
        return {"type": self.TYPE, "to": str(self.to), "amount": self.amount}


@dataclass(frozen=True)
class Transfer(_Credit):
    """Move ``amount`` from the signer to ``to``. Needs the transact role."""

    TAG = 0
    TYPE = "transfer"


@dataclass(frozen=True)
class Mint(_Credit):
    """Create ``amount`` new units in ``to``. Needs the mint role."""

    TAG = 1
    TYPE = "mint"


@dataclass(frozen=True)
class PutRecord:
    """Set a record (text is encoded as UTF-8). Needs the write role."""

    key: bytes
    value: bytes
    TAG = 2
    TYPE = "put_record"

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", _bytes_arg(self.key, "record key"))
        object.__setattr__(self, "value", _bytes_arg(self.value, "record value"))

    def encode_fields(self, writer: Writer) -> None:
        writer.vec_u8(self.key).vec_u8(self.value)

    def to_json(self) -> Dict[str, Any]:
        return {"type": self.TYPE, "key": to_hex(self.key), "value": to_hex(self.value)}


@dataclass(frozen=True)
class DeleteRecord:
    """Delete a record. Needs the write role."""

    key: bytes
    TAG = 3
    TYPE = "delete_record"

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", _bytes_arg(self.key, "record key"))

    def encode_fields(self, writer: Writer) -> None:
        writer.vec_u8(self.key)

    def to_json(self) -> Dict[str, Any]:
        return {"type": self.TYPE, "key": to_hex(self.key)}


@dataclass(frozen=True)
class _RoleChange:
    """The fields of the payloads that change one ``role`` of ``account``."""

    account: Address
    role: Role
    TYPE = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", Address.parse(self.account))
        object.__setattr__(self, "role", Role.parse(self.role))

    def encode_fields(self, writer: Writer) -> None:
        writer.fixed(self.account.raw).u8(int(self.role))

    def to_json(self) -> Dict[str, Any]:
        return {"type": self.TYPE, "account": str(self.account), "role": self.role.text}


@dataclass(frozen=True)
class GrantRole(_RoleChange):
    """Give ``role`` to ``account``. Needs the admin role."""

    TAG = 4
    TYPE = "grant_role"


@dataclass(frozen=True)
class RevokeRole(_RoleChange):
    """Take ``role`` from ``account``. Needs the admin role."""

    TAG = 5
    TYPE = "revoke_role"


@dataclass(frozen=True)
class AddValidator:
    """Add a validator, in force ``validator_change_delay`` blocks later. Needs the admin role."""

    validator: ValidatorInfo
    TAG = 6
    TYPE = "add_validator"

    def __post_init__(self) -> None:
        if not isinstance(self.validator, ValidatorInfo):
            raise InvalidInput("AddValidator needs a ValidatorInfo")

    def encode_fields(self, writer: Writer) -> None:
        self.validator.encode_into(writer)

    def to_json(self) -> Dict[str, Any]:
        return {"type": self.TYPE, "validator": self.validator.to_json()}


@dataclass(frozen=True)
class RemoveValidator:
    """Remove the validator with this consensus key. Needs the admin role."""

    public_key: PublicKey
    TAG = 7
    TYPE = "remove_validator"

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_key", PublicKey.parse(self.public_key))

    def encode_fields(self, writer: Writer) -> None:
        writer.fixed(self.public_key.raw)

    def to_json(self) -> Dict[str, Any]:
        return {"type": self.TYPE, "public_key": str(self.public_key)}


Payload = Union[Transfer, Mint, PutRecord, DeleteRecord, GrantRole, RevokeRole, AddValidator, RemoveValidator]

PAYLOAD_KINDS = (Transfer, Mint, PutRecord, DeleteRecord, GrantRole, RevokeRole, AddValidator, RemoveValidator)


def _decode_payload(reader: Reader) -> Payload:
    tag = reader.u8()
    if tag in (0, 1):
        to = Address(reader.fixed(20))
        amount = reader.u64()
        return Transfer(to, amount) if tag == 0 else Mint(to, amount)
    if tag == 2:
        key = reader.vec_u8()
        return PutRecord(key, reader.vec_u8())
    if tag == 3:
        return DeleteRecord(reader.vec_u8())
    if tag in (4, 5):
        account = Address(reader.fixed(20))
        role = _decode_role(reader)
        return GrantRole(account, role) if tag == 4 else RevokeRole(account, role)
    if tag == 6:
        return AddValidator(ValidatorInfo.decode_from(reader))
    if tag == 7:
        return RemoveValidator(PublicKey.decode_from(reader))
    raise DecodeError(f"unknown payload variant {tag}")


def payload_from_json(value: Any) -> Payload:
    """A payload from the JSON the node serves (``{"type": "transfer", ...}``)."""
    if not isinstance(value, dict) or "type" not in value:
        raise InvalidInput(f"a payload is an object with a type, got {value!r}")
    kind = value["type"]
    fields = {name: field for name, field in value.items() if name != "type"}

    def need(*names: str) -> None:
        if set(fields) != set(names):
            raise InvalidInput(f"payload {kind!r} has fields {sorted(names)}, got {sorted(fields)}")

    if kind in ("transfer", "mint"):
        need("to", "amount")
        cls = Transfer if kind == "transfer" else Mint
        return cls(Address.parse(fields["to"]), fields["amount"])
    if kind == "put_record":
        need("key", "value")
        return PutRecord(from_hex(fields["key"], what="key"), from_hex(fields["value"], what="value"))
    if kind == "delete_record":
        need("key")
        return DeleteRecord(from_hex(fields["key"], what="key"))
    if kind in ("grant_role", "revoke_role"):
        need("account", "role")
        role_cls = GrantRole if kind == "grant_role" else RevokeRole
        return role_cls(Address.parse(fields["account"]), Role.parse(fields["role"]))
    if kind == "add_validator":
        need("validator")
        return AddValidator(ValidatorInfo.from_json(fields["validator"]))
    if kind == "remove_validator":
        need("public_key")
        return RemoveValidator(PublicKey.parse(fields["public_key"]))
    raise InvalidInput(f"unknown payload type {kind!r}")


# --- transactions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Transaction:
    """The signed part of a transaction (``ledger::Transaction``)."""

    chain_id: str
    signer: PublicKey
    nonce: int
    payload: Payload

    def __post_init__(self) -> None:
        check_chain_id(self.chain_id)
        object.__setattr__(self, "signer", PublicKey.parse(self.signer))
        check_u64(self.nonce, "nonce")
        if not isinstance(self.payload, PAYLOAD_KINDS):
            raise InvalidInput(f"not a payload: {self.payload!r}")

    def encode(self) -> bytes:
        """The borsh encoding of the transaction alone."""
        writer = Writer().string(self.chain_id).fixed(self.signer.raw).u64(self.nonce).u8(self.payload.TAG)
        self.payload.encode_fields(writer)
        return writer.getvalue()

    def signing_bytes(self) -> bytes:
        """What the signer signs: borsh of (``b"stele/tx/v1"``, transaction)."""
        return Writer().vec_u8(TX_DOMAIN).raw(self.encode()).getvalue()

    def sender(self) -> Address:
        """The signer's account."""
        return Address.of(self.signer)

    def sign(self, key: Any) -> "SignedTransaction":
        """Signs with a :class:`stele_sdk.SigningKey` whose public key must be ``signer``."""
        public_key = getattr(key, "public_key", None)
        if public_key != self.signer:
            raise InvalidInput("the signing key is not the transaction's signer")
        return SignedTransaction(self, key.sign(self.signing_bytes()))

    @classmethod
    def decode_from(cls, reader: Reader) -> "Transaction":
        chain_id = _decode_chain_id(reader)
        signer = PublicKey.decode_from(reader)
        nonce = reader.u64()
        return cls(chain_id, signer, nonce, _decode_payload(reader))


@dataclass(frozen=True)
class SignedTransaction:
    """A transaction with its signature: what is submitted (0x-hex of :meth:`encode`)."""

    transaction: Transaction
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            raise InvalidInput("a signature is 64 bytes")

    def encode(self) -> bytes:
        return self.transaction.encode() + self.signature

    def to_hex(self) -> str:
        """What ``tx_submit`` takes."""
        return to_hex(self.encode())

    def hash(self) -> bytes:
        """sha3-256 of the encoding: the transaction's identity."""
        return sha3_256(self.encode())

    def hash_hex(self) -> str:
        return to_hex(self.hash())

    def verify_signature(self) -> bool:
        """Whether the node accepts the signature (ZIP-215)."""
        return self.transaction.signer.verify(self.transaction.signing_bytes(), self.signature)

    @classmethod
    def decode_from(cls, reader: Reader) -> "SignedTransaction":
        transaction = Transaction.decode_from(reader)
        return cls(transaction, reader.fixed(64))

    @classmethod
    def decode(cls, data: Union[bytes, str]) -> "SignedTransaction":
        """Exactly one transaction from bytes or 0x-hex (trailing bytes refused)."""
        raw = from_hex(data, what="transaction") if isinstance(data, str) else bytes(data)
        reader = Reader(raw)
        value = cls.decode_from(reader)
        reader.finish()
        return value


# --- receipts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """Why an included transaction had no effect (``ledger::Failure``).

    ``reason`` is one of ``permission_denied`` (``required``), ``insufficient_balance``
    (``balance``, ``needed``), ``balance_overflow``, ``record_not_found``, ``validator_exists``,
    ``validator_not_found``, ``invalid_validator_set`` (``detail``)."""

    reason: str
    required: Optional[Role] = None
    balance: Optional[int] = None
    needed: Optional[int] = None
    detail: Optional[str] = None

    REASONS = (
        "permission_denied",
        "insufficient_balance",
        "balance_overflow",
        "record_not_found",
        "validator_exists",
        "validator_not_found",
        "invalid_validator_set",
    )

    def encode_into(self, writer: Writer) -> None:
        writer.u8(self.REASONS.index(self.reason))
        if self.reason == "permission_denied":
            writer.u8(int(self.required or 0))
        elif self.reason == "insufficient_balance":
            writer.u64(self.balance or 0).u64(self.needed or 0)
        elif self.reason == "invalid_validator_set":
            writer.string(self.detail or "")

    @classmethod
    def decode_from(cls, reader: Reader) -> "Failure":
        tag = reader.u8()
        if tag >= len(cls.REASONS):
            raise DecodeError(f"unknown failure variant {tag}")
        reason = cls.REASONS[tag]
        if reason == "permission_denied":
            return cls(reason, required=_decode_role(reader))
        if reason == "insufficient_balance":
            return cls(reason, balance=reader.u64(), needed=reader.u64())
        if reason == "invalid_validator_set":
            return cls(reason, detail=reader.string())
        return cls(reason)

    def __str__(self) -> str:
        if self.reason == "permission_denied":
            return f"permission denied: the signer lacks the {self.required.text if self.required else '?'} role"
        if self.reason == "insufficient_balance":
            return f"insufficient balance: has {self.balance}, needs {self.needed}"
        if self.reason == "invalid_validator_set":
            return f"the validator set would become invalid: {self.detail}"
        return {
            "balance_overflow": "balance overflow",
            "record_not_found": "record not found",
            "validator_exists": "the validator is already in the set",
            "validator_not_found": "the validator is not in the set",
        }[self.reason]


@dataclass(frozen=True)
class Receipt:
    """The outcome of an included transaction (``ledger::Receipt``)."""

    tx_hash: bytes
    failure: Optional[Failure]

    @property
    def succeeded(self) -> bool:
        return self.failure is None

    def encode(self) -> bytes:
        writer = Writer().fixed(self.tx_hash)
        if self.failure is None:
            writer.u8(0)
        else:
            writer.u8(1)
            self.failure.encode_into(writer)
        return writer.getvalue()

    def hash(self) -> bytes:
        """sha3-256 of the encoding: the leaf of the receipts root."""
        return sha3_256(self.encode())

    @classmethod
    def decode_from(cls, reader: Reader) -> "Receipt":
        tx_hash = reader.fixed(32)
        return cls(tx_hash, reader.option(Failure.decode_from))



_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def peer_id_of(node_key: Union[PublicKey, str, bytes]) -> str:
    """The libp2p peer id (base58 ``12D3KooW…``) of an ed25519 node key (genesis/src/peer_id.rs):
    an identity multihash of protobuf ``{type: Ed25519, data: key}``."""
    data = bytes([0x00, 36, 0x08, 0x01, 0x12, 32]) + PublicKey.parse(node_key).raw
    number = int.from_bytes(data, "big")
    digits = ""
    while number:
        number, remainder = divmod(number, 58)
        digits = _BASE58[remainder] + digits
    leading_zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * leading_zeros + digits
