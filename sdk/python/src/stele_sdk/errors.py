"""Every exception the SDK raises derives from :class:`SteleError`.

* :class:`InvalidInput` (also a ``ValueError``): bad arguments to the SDK itself (a malformed
  address, an amount out of range, bad hex...), raised before anything is sent.
* :class:`DecodeError`: bytes that are not the borsh encoding of the expected type.
* :class:`KeyFileError`: a key file that cannot be used (permissions, mismatch, format).
* :class:`GenesisError`: a genesis file that the node would refuse.
* :class:`ProofInvalid`: a proof bundle that does not verify, with the reason.
* :class:`RpcError` and its subclasses: the node answered with a JSON-RPC error object; ``code``
  is the node's stable code (docs/rpc.md "Errors").
* :class:`TransportError`: no JSON-RPC answer at all (connection refused, HTTP 403/408/413/429,
  a body that is not JSON-RPC).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Dict, Optional, Type

__all__ = [
    "AlreadyPending",
    "BadSignature",
    "BatchTooLarge",
    "DecodeError",
    "ErrorCode",
    "GenesisError",
    "InvalidInput",
    "InvalidParams",
    "InvalidRequest",
    "InvalidTransaction",
    "KeyFileError",
    "MalformedTransaction",
    "MempoolFull",
    "MethodNotFound",
    "NonceTooHigh",
    "NonceTooLow",
    "NotFound",
    "ParseError",
    "PermissionDenied",
    "ProofInvalid",
    "RequestTooLarge",
    "ResponseTooLarge",
    "RpcError",
    "ServerBusy",
    "SteleError",
    "SubmitTimeout",
    "TooLarge",
    "TooManySubscriptions",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "WrongChain",
    "rpc_error",
]


class SteleError(Exception):
    """Base class of every SDK error."""


class InvalidInput(SteleError, ValueError):
    """An argument the SDK refuses before contacting any node."""


class DecodeError(SteleError, ValueError):
    """Bytes that do not decode as the expected borsh type (what the node would refuse too)."""


class KeyFileError(SteleError):
    """A key file that must not or cannot be used."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class GenesisError(SteleError):
    """A genesis document the node would refuse; ``field`` names the JSON field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ProofInvalid(SteleError):
    """A transaction proof that does not verify.

    ``kind`` is one of ``undecodable``, ``claim`` (the bundle's fields disagree with its proof),
    ``wrong_chain``, ``header``, ``inclusion``, ``change`` (the Rust ``ProofError`` variants);
    ``reason`` is the same text the node's verifier (``stele verify-proof``) prints after
    ``INVALID:``.
    """

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class TransportError(SteleError):
    """The request got no JSON-RPC answer: no connection, or an HTTP refusal before JSON-RPC."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class ErrorCode(IntEnum):
    """The node's JSON-RPC error codes (docs/rpc.md, rpc/src/error.rs)."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    TOO_MANY_SUBSCRIPTIONS = -32006
    REQUEST_TOO_LARGE = -32007
    RESPONSE_TOO_LARGE = -32008
    SERVER_BUSY = -32009
    BATCH_TOO_LARGE = -32010
    MALFORMED_TRANSACTION = 1001
    BAD_SIGNATURE = 1002
    WRONG_CHAIN = 1003
    NONCE_TOO_LOW = 1004
    NONCE_TOO_HIGH = 1005
    PERMISSION_DENIED = 1006
    TOO_LARGE = 1007
    MEMPOOL_FULL = 1008
    ALREADY_PENDING = 1009
    INVALID_TRANSACTION = 1010
    NOT_FOUND = 1011
    TIMEOUT = 1012
    UNAVAILABLE = 1013
    UNAUTHORIZED = 1014


class RpcError(SteleError):
    """A JSON-RPC error object from the node. ``code`` is an int (an :class:`ErrorCode` member
    when the node documents it), ``message`` the node's text, ``data`` its optional data."""

    def __init__(self, code: int, message: str, data: Any = None, method: Optional[str] = None) -> None:
        where = f"{method}: " if method else ""
        super().__init__(f"{where}{message} (code {code})")
        self.code: int = code
        self.message = message
        self.data = data
        self.method = method

    @property
    def error_code(self) -> Optional[ErrorCode]:
        """The code as an :class:`ErrorCode`, or ``None`` for an undocumented one."""
        try:
            return ErrorCode(self.code)
        except ValueError:
            return None


class ParseError(RpcError):
    """-32700: the body is not JSON."""


class InvalidRequest(RpcError):
    """-32600: not a JSON-RPC request."""


class MethodNotFound(RpcError):
    """-32601: no such method."""


class InvalidParams(RpcError):
    """-32602: wrong type or count, bad hex, ``from > to``."""


class TooManySubscriptions(RpcError):
    """-32006: too many subscriptions on this connection."""


class RequestTooLarge(RpcError):
    """-32007: request over ``rpc.max_request_bytes``."""


class ResponseTooLarge(RpcError):
    """-32008: response over the response budget; ask for less."""


class ServerBusy(RpcError):
    """-32009: server busy."""


class BatchTooLarge(RpcError):
    """-32010: batch over ``rpc.max_batch`` calls."""


class MalformedTransaction(RpcError):
    """1001: not hex, or not a transaction's encoding."""


class BadSignature(RpcError):
    """1002: the signature does not verify."""


class WrongChain(RpcError):
    """1003: signed for another chain id."""


class NonceTooLow(RpcError):
    """1004: the nonce is already used."""


class NonceTooHigh(RpcError):
    """1005: the nonce is further ahead than the mempool keeps."""


class PermissionDenied(RpcError):
    """1006: the signer lacks the role the payload needs."""


class TooLarge(RpcError):
    """1007: transaction, record key or value over the genesis limits."""


class MempoolFull(RpcError):
    """1008: mempool full; retry after the next block."""


class AlreadyPending(RpcError):
    """1009: this transaction, or another with its nonce, is already pending."""


class InvalidTransaction(RpcError):
    """1010: another field is invalid (e.g. a validator entry)."""


class NotFound(RpcError):
    """1011: no such block, height or transaction."""


class SubmitTimeout(RpcError):
    """1012: ``tx_submitAndWait`` gave up; the transaction may still commit."""


class Unavailable(RpcError):
    """1013: the node is shutting down or its storage failed."""


class Unauthorized(RpcError):
    """1014: the node requires a (different) bearer token for submissions."""


_BY_CODE: Dict[int, Type[RpcError]] = {
    ErrorCode.PARSE_ERROR: ParseError,
    ErrorCode.INVALID_REQUEST: InvalidRequest,
    ErrorCode.METHOD_NOT_FOUND: MethodNotFound,
    ErrorCode.INVALID_PARAMS: InvalidParams,
    ErrorCode.TOO_MANY_SUBSCRIPTIONS: TooManySubscriptions,
    ErrorCode.REQUEST_TOO_LARGE: RequestTooLarge,
    ErrorCode.RESPONSE_TOO_LARGE: ResponseTooLarge,
    ErrorCode.SERVER_BUSY: ServerBusy,
    ErrorCode.BATCH_TOO_LARGE: BatchTooLarge,
    ErrorCode.MALFORMED_TRANSACTION: MalformedTransaction,
    ErrorCode.BAD_SIGNATURE: BadSignature,
    ErrorCode.WRONG_CHAIN: WrongChain,
    ErrorCode.NONCE_TOO_LOW: NonceTooLow,
    ErrorCode.NONCE_TOO_HIGH: NonceTooHigh,
    ErrorCode.PERMISSION_DENIED: PermissionDenied,
    ErrorCode.TOO_LARGE: TooLarge,
    ErrorCode.MEMPOOL_FULL: MempoolFull,
    ErrorCode.ALREADY_PENDING: AlreadyPending,
    ErrorCode.INVALID_TRANSACTION: InvalidTransaction,
    ErrorCode.NOT_FOUND: NotFound,
    ErrorCode.TIMEOUT: SubmitTimeout,
    ErrorCode.UNAVAILABLE: Unavailable,
    ErrorCode.UNAUTHORIZED: Unauthorized,
}


def rpc_error(error: Any, method: Optional[str] = None) -> RpcError:
    """The exception for a JSON-RPC error object (the subclass for its code)."""
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        return RpcError(0, f"malformed error object: {error!r}", None, method)
    code = int(error["code"])
    message = str(error.get("message", ""))
    return _BY_CODE.get(code, RpcError)(code, message, error.get("data"), method)
