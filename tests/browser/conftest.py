"""Fixtures of the explorer's browser test: a real 4-validator network of `stele` processes and a
headless Chromium (Debian's chromium and chromium-driver) driven by selenium.

Every wait is bounded, and the network is always stopped on teardown, a failed test included:
SIGTERM to `stele testnet up` (which stops its nodes cleanly), then SIGKILL to its whole
process group for whatever is left.
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VALIDATORS = 4
PORTS_PER_NODE = 3
NETWORK_START_TIMEOUT = 150  # seconds for `testnet up` to report its first block
STOP_TIMEOUT = 40  # seconds for the nodes to stop cleanly before they are killed


def stele_bin() -> Path:
    """The binary under test: $STELE_BIN, else $CARGO_TARGET_DIR/debug/stele, else target/debug/stele."""
    if os.environ.get("STELE_BIN"):
        return Path(os.environ["STELE_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else REPO / "target") / "debug" / "stele"


def find_browser():
    """(chromium, chromedriver) paths, or a reason they are missing."""
    chromium = next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver") or next(
        (path for path in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if os.access(path, os.X_OK)), None
    )
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path]
    if missing:
        return None, None, (
            f"{' and '.join(missing)} not found: the explorer's browser test needs Debian's headless Chromium "
            "(apt-get install -y chromium chromium-driver)"
        )
    return chromium, driver, None


def port_taken(port: int):
    """Why ``port`` cannot be listened on at 127.0.0.1, or None if it can."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            return f"{port}: {error}"
    return None


def free_base_port() -> int:
    """A base port with the 3 ports of each of the 4 nodes free (base + 3i P2P, + 1 JSON-RPC,
    + 2 metrics), below Linux's ephemeral ports (32768-60999), which outgoing connections take."""
    count = VALIDATORS * PORTS_PER_NODE
    failures = []
    for _ in range(200):
        base = random.randrange(20000, 32700 - count)
        taken = next((why for port in range(base, base + count) if (why := port_taken(port))), None)
        if taken is None:
            return base
        failures.append(taken)
    raise RuntimeError(f"no {count} free ports in a row on 127.0.0.1; the last refusals: {failures[-3:]}")


def rpc(url: str, method: str, params=None, timeout: float = 10):
    """One JSON-RPC call (as a client that is no browser: no Origin)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


class Network:
    """A running `stele testnet up`."""

    def __init__(self, stele: Path, folder: Path, base_port: int, process: subprocess.Popen, log: Path):
        self.stele = stele
        self.dir = folder
        self.base_port = base_port
        self.process = process
        self.log = log

    def rpc_url(self, node: int = 0) -> str:
        return f"http://127.0.0.1:{self.base_port + PORTS_PER_NODE * node + 1}"

    @property
    def faucet_key(self) -> Path:
        return self.dir / "faucet.key.json"

    @property
    def genesis(self) -> Path:
        return self.dir / "genesis.json"

    def call(self, method: str, params=None, node: int = 0):
        return rpc(self.rpc_url(node), method, params)

    def run(self, *arguments: str, timeout: float = 90) -> subprocess.CompletedProcess:
        """`stele ARGUMENTS...`, bounded in time; fails the test with its output on a non-zero exit."""
        done = subprocess.run(
            [str(self.stele), *arguments], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 0, f"stele {' '.join(arguments)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done

    def stop(self) -> None:
        """Stops the nodes cleanly if they let themselves be, and kills whatever is left."""
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout=STOP_TIMEOUT)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        # The nodes are children of `testnet up`, in its process group: none may outlive the test.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture(scope="session")
def browser_paths():
    chromium, driver, missing = find_browser()
    if missing:
        pytest.skip(missing)
    return chromium, driver


SCREENSHOTS = []  # the folder, once a test asked for it


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The folder the screenshots go to: $STELE_SCREENSHOTS, else a fresh temporary folder."""
    folder = Path(os.environ.get("STELE_SCREENSHOTS") or tempfile.mkdtemp(prefix="stele-explorer-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    SCREENSHOTS.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter):
    """Says where the screenshots are, even under -q and when a test failed."""
    for folder in SCREENSHOTS:
        shots = sorted(path.name for path in folder.glob("*.png"))
        terminalreporter.write_line(f"explorer screenshots ({len(shots)}): {folder}")


@pytest.fixture(scope="session")
def network(browser_paths, tmp_path_factory):
    """A real 4-validator network, stopped on teardown whatever happened."""
    stele = stele_bin()
    if not os.access(stele, os.X_OK):
        pytest.fail(
            f"no stele binary at {stele}: build it with `cargo build --workspace --locked --bins`, "
            "or point STELE_BIN at one"
        )
    folder = tmp_path_factory.mktemp("explorer") / "testnet"
    base_port = free_base_port()
    log = folder.parent / "testnet-up.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(stele), "testnet", "up", "--dir", str(folder), "--base-port", str(base_port), "--no-restart"],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so teardown can kill every node
        )
    running = Network(stele, folder, base_port, process, log)
    try:
        deadline = time.monotonic() + NETWORK_START_TIMEOUT
        # `testnet up` prints the table of nodes once the first block is committed.
        while "Try a transfer" not in log.read_text(errors="replace"):
            if process.poll() is not None:
                pytest.fail(f"stele testnet up exited {process.returncode}:\n{log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail(f"no first block within {NETWORK_START_TIMEOUT} s:\n{log.read_text(errors='replace')}")
            time.sleep(0.5)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def driver(browser_paths):
    """Headless Chromium through Debian's chromedriver (nothing downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1360,1000",
        "--force-device-scale-factor=1",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=chromedriver, log_output=subprocess.DEVNULL)
    browser = webdriver.Chrome(service=service, options=options)
    browser.set_page_load_timeout(30)
    browser.set_script_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()
