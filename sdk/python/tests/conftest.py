"""Fixtures: the shared vectors file, and a real 4-validator `stele` network started for the
session (``stele testnet generate`` then one ``stele start`` per node), always stopped at the
end, even when a test fails.

The binary is ``$STELE_BIN``, else ``$CARGO_TARGET_DIR/debug/stele``, else
``<repo>/target/debug/stele``; the network tests are skipped, saying so, only if none exists.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import stele_sdk

REPO = Path(__file__).resolve().parents[3]
VECTORS = REPO / "sdk" / "vectors.json"
VALIDATORS = 4
START_TIMEOUT_S = 120.0


@pytest.fixture(scope="session")
def vectors() -> Dict[str, Any]:
    with open(VECTORS, encoding="utf-8") as file:
        return json.load(file)  # type: ignore[no-any-return]


def stele_binary() -> Path:
    explicit = os.environ.get("STELE_BIN")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        return Path(target) / "debug" / "stele"
    return REPO / "target" / "debug" / "stele"


def _port_taken(port: int) -> str | None:
    """Why ``port`` cannot be listened on at 127.0.0.1, or None if it can."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            return f"{port}: {error}"
    return None


def free_base_port(count: int) -> int:
    """A base port with ports base .. base+count-1 free, probed from a random start.

    The range lies below Linux's ephemeral ports (32768-60999), which the kernel hands to
    outgoing connections at any moment, so a node cannot later collide with a client socket.
    """
    failures: List[str] = []
    for _ in range(200):
        base = random.randrange(20000, 32700 - count)
        taken = next((why for port in range(base, base + count) if (why := _port_taken(port))), None)
        if taken is None:
            return base
        failures.append(taken)
    raise RuntimeError(f"no {count} free ports in a row on 127.0.0.1; the last refusals: {failures[-3:]}")


@dataclass
class Network:
    """A running local network."""

    dir: Path
    binary: Path
    genesis_path: Path
    faucet_key_path: Path
    rpc_urls: List[str]
    processes: List["subprocess.Popen[bytes]"]

    @property
    def rpc(self) -> str:
        return self.rpc_urls[0]

    def log_tails(self, lines: int = 15) -> str:
        parts = []
        for index in range(len(self.rpc_urls)):
            log = self.dir / f"node{index}" / "node.log"
            text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
            parts.append(f"--- node{index} ---\n" + "\n".join(text))
        return "\n".join(parts)


def _stop(processes: List["subprocess.Popen[bytes]"]) -> None:
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    binary = stele_binary()
    if not binary.is_file():
        pytest.skip(
            f"no stele binary at {binary}: build it (cargo build --workspace --locked --bins) or set STELE_BIN"
        )
    folder = tmp_path_factory.mktemp("testnet")
    base_port = free_base_port(3 * VALIDATORS)
    generated = subprocess.run(
        [str(binary), "testnet", "generate", "--dir", str(folder), "--base-port", str(base_port),
         "--validators", str(VALIDATORS)],
        capture_output=True, text=True, timeout=60,
    )
    assert generated.returncode == 0, f"testnet generate failed:\n{generated.stdout}\n{generated.stderr}"
    for index in range(VALIDATORS):
        # Blocks every second when idle, so subscriptions and waits are quick.
        with open(folder / f"node{index}" / "config.toml", "a", encoding="utf-8") as config:
            config.write('\n[consensus]\nempty_block_interval = "1s"\n')
    processes: List["subprocess.Popen[bytes]"] = []
    try:
        for index in range(VALIDATORS):
            home = folder / f"node{index}"
            log = open(home / "node.log", "ab")
            processes.append(
                subprocess.Popen(
                    [str(binary), "start", "--home", str(home)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                )
            )
            log.close()
        urls = [f"http://127.0.0.1:{base_port + 3 * index + 1}" for index in range(VALIDATORS)]
        running = Network(folder, binary, folder / "genesis.json", folder / "faucet.key.json", urls, processes)
        _wait_committed(running)
        yield running
    finally:
        _stop(processes)


def _wait_committed(network: Network) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    clients = [stele_sdk.Client(url, timeout=3) for url in network.rpc_urls]
    try:
        while True:
            for index, process in enumerate(network.processes):
                if process.poll() is not None:
                    pytest.fail(f"node{index} exited ({process.returncode}) during startup\n{network.log_tails()}")
            committed = 0
            for client in clients:
                try:
                    if client.status()["height"] >= 1:
                        committed += 1
                except stele_sdk.SteleError:
                    pass
            if committed == len(clients):
                return
            if time.monotonic() > deadline:
                pytest.fail(f"only {committed} of {len(clients)} nodes committed within {START_TIMEOUT_S} s\n"
                            f"{network.log_tails()}")
            time.sleep(0.3)
    finally:
        for client in clients:
            client.close()


@pytest.fixture()
def client(network: Network) -> Iterator[stele_sdk.Client]:
    with stele_sdk.Client(network.rpc) as node:
        yield node


@pytest.fixture(scope="session")
def faucet(network: Network) -> stele_sdk.SigningKey:
    return stele_sdk.load_key(network.faucet_key_path)
