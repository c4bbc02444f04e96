"""JSON-RPC client for a Stele node (docs/rpc.md): queries, submissions, and a block
subscription over WebSocket as an async iterator.

Every call returns the node's JSON result (a dict or list, as docs/rpc.md documents it) and
raises the :class:`~stele_sdk.errors.RpcError` subclass of the node's error code, or
:class:`~stele_sdk.errors.TransportError` when there is no JSON-RPC answer.
"""

from __future__ import annotations

import itertools
import json
from types import TracebackType
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Sequence, Tuple, Type, Union

import httpx
import websockets
from websockets.asyncio.client import ClientConnection, connect

from .encoding import check_u64, from_hex, to_hex
from .errors import InvalidInput, RpcError, SteleError, TransportError, rpc_error
from .keys import SigningKey
from .types import Address, Payload, SignedTransaction, Transaction

__all__ = ["BlockSubscription", "Client", "SUBMIT_WAIT_MAX_MS", "BLOCKS_PAGE_MAX"]

SUBMIT_WAIT_MAX_MS = 60_000
BLOCKS_PAGE_MAX = 100

TxLike = Union[SignedTransaction, bytes, str]
BlockRef = Union[int, str, bytes]


def _tx_hex(transaction: TxLike) -> str:
    if isinstance(transaction, SignedTransaction):
        return transaction.to_hex()
    if isinstance(transaction, (bytes, bytearray)):
        return to_hex(transaction)
    if isinstance(transaction, str):
        from_hex(transaction, what="transaction")
        return transaction if transaction.startswith("0x") else "0x" + transaction
    raise InvalidInput(f"expected a SignedTransaction, bytes or hex, got {type(transaction).__name__}")


def _height(height: Optional[int], what: str = "height") -> Optional[int]:
    return None if height is None else check_u64(height, what)


def _digest_hex(value: Union[str, bytes], what: str) -> str:
    if isinstance(value, (bytes, bytearray)):
        if len(value) != 32:
            raise InvalidInput(f"{what}: expected 32 bytes, got {len(value)}")
        return to_hex(value)
    return to_hex(from_hex(value, 32, what))


def _record_key(key: Union[str, bytes]) -> str:
    """Record keys are bytes; text is taken as UTF-8, as the CLI does (0x-hex text as hex)."""
    if isinstance(key, (bytes, bytearray)):
        return to_hex(key)
    if isinstance(key, str):
        return to_hex(from_hex(key, what="record key")) if key.startswith("0x") else to_hex(key.encode("utf-8"))
    raise InvalidInput(f"a record key is bytes or text, got {type(key).__name__}")


def websocket_url(url: str) -> str:
    """The WebSocket URL of the node's RPC port (same port, ``ws``/``wss``)."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return url


class Client:
    """A node's JSON-RPC API over HTTP (``url`` like ``http://127.0.0.1:26601``).

    ``token`` is the bearer token of a node that sets ``rpc.submit_token_file``. Use as a context
    manager, or call :meth:`close`.
    """

    def __init__(self, url: str = "http://127.0.0.1:26601", *, timeout: float = 70.0, token: Optional[str] = None) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInput(f"the node URL must start with http:// or https://, got {url!r}")
        self.url = url
        self.token = token
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(timeout=timeout, headers=headers)
        self._ids = itertools.count(1)

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self, kind: Optional[Type[BaseException]], value: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- transport ---------------------------------------------------------------------

    def _post(self, body: Any) -> Any:
        try:
            response = self._http.post(self.url, content=json.dumps(body))
        except httpx.HTTPError as error:
            raise TransportError(f"{self.url}: {error}") from None
        if response.status_code != 200:
            raise TransportError(
                f"{self.url}: HTTP {response.status_code}: {response.text.strip()[:200]}", response.status_code
            )
        try:
            return response.json()
        except ValueError:
            raise TransportError(f"{self.url}: the answer is not JSON: {response.text[:200]!r}") from None

    def call(self, method: str, *params: Any) -> Any:
        """Calls one method with positional params; returns its result or raises."""
        answer = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)})
        return _result(answer, method)

    def batch(self, calls: Sequence[Tuple[Any, ...]]) -> List[Union[Any, RpcError]]:
        """One JSON-RPC batch of ``(method, *params)`` calls. Returns, in order, each call's
        result or its :class:`RpcError` (not raised: the other calls of a batch still run)."""
        if not calls:
            return []
        requests: List[Dict[str, Any]] = []
        for call in calls:
            if not call or not isinstance(call[0], str):
                raise InvalidInput("each batch call is (method, *params)")
            requests.append({"jsonrpc": "2.0", "id": next(self._ids), "method": call[0], "params": list(call[1:])})
        answer = self._post(requests)
        if isinstance(answer, dict) and "error" in answer:
            raise rpc_error(answer["error"], "batch")
        if not isinstance(answer, list):
            raise TransportError(f"{self.url}: a batch answer must be a list, got {answer!r}"[:300])
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        results: List[Union[Any, RpcError]] = []
        for request in requests:
            item = by_id.get(request["id"])
            if item is None:
                results.append(RpcError(0, "no answer for this call in the batch", None, request["method"]))
            elif "error" in item:
                results.append(rpc_error(item["error"], request["method"]))
            else:
                results.append(item.get("result"))
        return results

    # --- chain -------------------------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        """``chain_status``: chain id, genesis hash, head height and hash, state root, view..."""
        return self.call("chain_status")  # type: ignore[no-any-return]

    def chain_id(self) -> str:
        return str(self.status()["chain_id"])

    def block(self, block: BlockRef) -> Dict[str, Any]:
        """``chain_getBlock``: by height or by 0x hash. Raises NotFound above the head."""
        if isinstance(block, bool):
            raise InvalidInput("a block is a height or a 0x hash, not a bool")
        if isinstance(block, int):
            return self.call("chain_getBlock", check_u64(block, "height"))  # type: ignore[no-any-return]
        return self.call("chain_getBlock", _digest_hex(block, "block hash"))  # type: ignore[no-any-return]

    def blocks(self, start: int, end: int) -> List[Dict[str, Any]]:
        """One ``chain_getBlocks`` page: blocks ``start..=min(end, start+99, head)``, possibly
        fewer (the response budget); see :meth:`iter_blocks` for all of them."""
        check_u64(start, "start")
        check_u64(end, "end")
        if not 1 <= start <= end:
            raise InvalidInput(f"need 1 <= start <= end, got {start}..{end}")
        return self.call("chain_getBlocks", start, end)  # type: ignore[no-any-return]

    def iter_blocks(self, start: int, end: int) -> Iterator[Dict[str, Any]]:
        """Every block ``start..=min(end, head)``, paging with ``chain_getBlocks``."""
        while start <= end:
            page = self.blocks(start, end)
            if not page:
                return
            yield from page
            try:
                start = int(page[-1]["header"]["height"]) + 1
            except (KeyError, TypeError, ValueError):
                raise TransportError(f"{self.url}: chain_getBlocks answered a block without a header height") from None

    def validators(self, height: Optional[int] = None) -> Dict[str, Any]:
        """``chain_getValidators``: the set that certifies ``height`` (default: the next block)."""
        return self.call("chain_getValidators", _height(height))  # type: ignore[no-any-return]

    def evidence(self) -> List[Dict[str, Any]]:
        """``chain_getEvidence``."""
        return self.call("chain_getEvidence")  # type: ignore[no-any-return]

    def divergences(self) -> List[Dict[str, Any]]:
        """``chain_getDivergences``: blocks peers hold certified where this node certified others."""
        return self.call("chain_getDivergences")  # type: ignore[no-any-return]

    def peers(self) -> List[Dict[str, Any]]:
        """``net_peers``."""
        return self.call("net_peers")  # type: ignore[no-any-return]

    # --- state -------------------------------------------------------------------------

    def account(self, address: Union[Address, str, bytes], height: Optional[int] = None) -> Dict[str, Any]:
        """``state_getAccount``: balance, nonce, roles at ``height`` (default: the head)."""
        return self.call("state_getAccount", str(Address.parse(address)), _height(height))  # type: ignore[no-any-return]

    def nonce(self, address: Union[Address, str, bytes]) -> int:
        """The nonce the account's next transaction must carry (at the head)."""
        return int(self.account(address)["nonce"])

    def record(self, key: Union[str, bytes], height: Optional[int] = None) -> Dict[str, Any]:
        """``state_getRecord``: ``value`` is 0x-hex, or None if absent."""
        return self.call("state_getRecord", _record_key(key), _height(height))  # type: ignore[no-any-return]

    def state_proof(
        self,
        *,
        account: Union[Address, str, bytes, None] = None,
        record: Union[str, bytes, None] = None,
        height: Optional[int] = None,
    ) -> Dict[str, Any]:
        """``state_getProof`` of one account or one record (exactly one of the two)."""
        if (account is None) == (record is None):
            raise InvalidInput("state_proof needs exactly one of account= or record=")
        target = {"account": str(Address.parse(account))} if account is not None else {"record": _record_key(record or b"")}
        return self.call("state_getProof", target, _height(height))  # type: ignore[no-any-return]

    # --- transactions ------------------------------------------------------------------

    def submit(self, transaction: TxLike) -> str:
        """``tx_submit``: admits a transaction to the mempool; returns its 0x hash."""
        return str(self.call("tx_submit", _tx_hex(transaction)))

    def submit_batch(self, transactions: List[TxLike]) -> List[Union[str, RpcError]]:
        """Many ``tx_submit`` calls in one JSON-RPC batch (checked by the node together).
        Returns each hash or each refusal, in order."""
        results = self.batch([("tx_submit", _tx_hex(transaction)) for transaction in transactions])
        return [result if isinstance(result, RpcError) else str(result) for result in results]

    def submit_and_wait(self, transaction: TxLike, timeout_ms: Optional[int] = None) -> Dict[str, Any]:
        """``tx_submitAndWait``: ``{hash, status: "committed", height, index, receipt}``; raises
        :class:`~stele_sdk.errors.SubmitTimeout` (1012) if not committed in time."""
        if timeout_ms is not None and not 0 < check_u64(timeout_ms, "timeout_ms") <= SUBMIT_WAIT_MAX_MS:
            raise InvalidInput(f"timeout_ms must be 1 to {SUBMIT_WAIT_MAX_MS}")
        return self.call("tx_submitAndWait", _tx_hex(transaction), timeout_ms)  # type: ignore[no-any-return]

    def transaction(self, tx_hash: Union[str, bytes]) -> Dict[str, Any]:
        """``tx_get``: status ``pending``, ``committed`` (with height, index, receipt) or ``unknown``."""
        return self.call("tx_get", _digest_hex(tx_hash, "transaction hash"))  # type: ignore[no-any-return]

    def tx_proof(self, tx_hash: Union[str, bytes]) -> Dict[str, Any]:
        """``tx_getProof``: the bundle :func:`stele_sdk.verify_tx_proof` checks offline."""
        return self.call("tx_getProof", _digest_hex(tx_hash, "transaction hash"))  # type: ignore[no-any-return]

    def build(self, key: SigningKey, payload: Payload, *, nonce: Optional[int] = None, chain_id: Optional[str] = None) -> SignedTransaction:
        """Builds and signs a transaction, asking the node for the chain id and the next nonce
        unless given."""
        if not isinstance(key, SigningKey):
            raise InvalidInput("key must be a SigningKey (see stele_sdk.load_key)")
        chain = chain_id if chain_id is not None else self.chain_id()
        next_nonce = nonce if nonce is not None else self.nonce(key.address)
        return Transaction(chain, key.public_key, next_nonce, payload).sign(key)

    # --- subscriptions -----------------------------------------------------------------

    def subscribe_blocks(self, *, open_timeout: float = 10.0) -> "BlockSubscription":
        """``chain_subscribeBlocks`` over WebSocket::

            async with client.subscribe_blocks() as blocks:
                async for header in blocks:
                    print(header["height"], header["hash"])
        """
        return BlockSubscription(websocket_url(self.url), token=self.token, open_timeout=open_timeout)


def _result(answer: Any, method: str) -> Any:
    if not isinstance(answer, dict):
        raise TransportError(f"{method}: not a JSON-RPC answer: {answer!r}"[:300])
    if "error" in answer:
        raise rpc_error(answer["error"], method)
    if "result" not in answer:
        raise TransportError(f"{method}: a JSON-RPC answer without result or error")
    return answer["result"]


class BlockSubscription:
    """An async iterator of committed block headers (each with ``tx_count``), in order.

    A subscriber that falls more than 1,024 blocks behind is dropped by the node; the iterator
    then raises :class:`RpcError` (or :class:`TransportError` if the connection closed):
    resubscribe and fetch the gap with :meth:`Client.iter_blocks`.
    """

    def __init__(self, url: str, *, token: Optional[str] = None, open_timeout: float = 10.0) -> None:
        self.url = url
        self._token = token
        self._open_timeout = open_timeout
        self._connection: Optional[ClientConnection] = None
        self.subscription_id: Optional[Any] = None

    async def open(self) -> "BlockSubscription":
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        try:
            self._connection = await connect(self.url, additional_headers=headers, open_timeout=self._open_timeout, max_size=2**24)
            await self._connection.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "chain_subscribeBlocks", "params": []}))
            while True:
                message = json.loads(await self._connection.recv())
                if isinstance(message, dict) and message.get("id") == 1:
                    self.subscription_id = _result(message, "chain_subscribeBlocks")
                    return self
        except (OSError, websockets.exceptions.WebSocketException, TimeoutError, ValueError) as error:
            await self.close()
            raise TransportError(f"{self.url}: {error}") from None
        except SteleError:
            await self.close()
            raise

    async def close(self) -> None:
        """Unsubscribes (best effort) and closes the connection."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if self.subscription_id is not None:
                await connection.send(
                    json.dumps({"jsonrpc": "2.0", "id": 2, "method": "chain_unsubscribeBlocks", "params": [self.subscription_id]})
                )
        except websockets.exceptions.WebSocketException:
            pass
        await connection.close()

    async def __aenter__(self) -> "BlockSubscription":
        return await self.open()

    async def __aexit__(
        self, kind: Optional[Type[BaseException]], value: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Dict[str, Any]]:
        return self

    async def __anext__(self) -> Dict[str, Any]:
        if self._connection is None:
            await self.open()
        assert self._connection is not None
        while True:
            try:
                text = await self._connection.recv()
            except websockets.exceptions.ConnectionClosed as error:
                raise TransportError(f"{self.url}: the subscription connection closed: {error}") from None
            try:
                message = json.loads(text)
            except ValueError:
                raise TransportError(f"{self.url}: a notification that is not JSON") from None
            if not isinstance(message, dict):
                continue
            if message.get("method") == "chain_block":
                params = message.get("params") or {}
                if "error" in params:
                    raise rpc_error(params["error"], "chain_subscribeBlocks")
                if params.get("subscription") == self.subscription_id:
                    result = params.get("result")
                    if isinstance(result, dict):
                        return result
            elif "error" in message and message.get("id") is None:
                raise rpc_error(message["error"], "chain_subscribeBlocks")
