"""The block explorer in a real browser, against a real 4-validator network.

After a transfer commits, the page (updated live over its WebSocket) shows the new block, the
block page names the validators that signed its certificate and lists the transfer with its
receipt, the transaction page gives the exact `stele verify-proof` command (which the test runs),
and bad searches get a clear message. Screenshots go to $STELE_SCREENSHOTS (default: a
temporary folder, printed).
"""

import base64
import json
import math
import re
import time

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as condition
from selenium.webdriver.support.ui import WebDriverWait

RECIPIENT = "0x00000000000000000000000000000000000000aa"
WAIT = 30  # seconds any one thing may take to show


def wait(driver, seconds=WAIT):
    # The page redraws as blocks arrive: an element found a moment ago may have been replaced.
    return WebDriverWait(
        driver, seconds, poll_frequency=0.2, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
    )


def shot(driver, folder, name):
    """Saves the whole page, 1360 px wide and as tall as it is (at most 4000 px), as NAME.png."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    height = min(4000, max(800, math.ceil(metrics["cssContentSize"]["height"])))
    override = {"width": 1360, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", override)
    try:
        time.sleep(0.4)  # let the charts redraw at the new size
        image = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path = folder / f"{name}.png"
    path.write_bytes(base64.b64decode(image["data"]))
    print(f"screenshot: {path}")
    return path


def open_explorer(driver, network, route=""):
    driver.get(f"{network.rpc_url()}/explorer{'#' + route if route else ''}")
    wait(driver).until(lambda d: d.current_url.split("#")[0].endswith("/explorer/"))


def severe_logs(driver):
    """The browser console's errors (a refused script, style or connection shows here)."""
    return [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def search(driver, text):
    box = driver.find_element(By.ID, "search-input")
    wait(driver).until(lambda d: box.is_enabled())
    box.clear()
    box.send_keys(text, Keys.ENTER)


def test_a_committed_transfer_shows_with_its_block_certificate_and_proof(driver, network, screenshots):
    validators = network.call("chain_getValidators")
    names = [validator["name"] for validator in validators["validators"]]
    assert len(names) == 4, validators

    open_explorer(driver, network)
    # The first block is committed before the fixture returns; the page shows the chain and goes
    # live over its WebSocket (same-origin, so the node's Origin rule lets it in).
    status = network.call("chain_status")
    wait(driver).until(lambda d: d.find_element(By.ID, "stat-height").text.replace(",", "").isdigit())
    wait(driver).until(lambda d: "on" in d.find_element(By.ID, "live").get_attribute("class").split())
    assert status["chain_id"] in driver.find_element(By.ID, "stats").text
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#signature-grid .sig-cell")) >= 4)
    grid_names = driver.find_element(By.ID, "validators").text
    assert all(name in grid_names for name in names), grid_names

    done = network.run(
        "tx", "transfer", "--to", RECIPIENT, "--amount", "5", "--key", str(network.faucet_key),
        "--wait", "--rpc", network.rpc_url(), "--json",
    )
    committed = json.loads(done.stdout.strip().splitlines()[-1])
    assert committed["status"] == "committed", committed
    tx_hash, height = committed["hash"], committed["height"]

    # The overview, without a reload, lists the new block (it came over the subscription).
    row = f'#latest-blocks tr[data-height="{height}"]'
    wait(driver).until(condition.presence_of_element_located((By.CSS_SELECTOR, row)))
    wait(driver).until(lambda d: int(d.find_element(By.ID, "stat-height").text.replace(",", "")) >= height)
    shot(driver, screenshots, "01-overview")

    # The block page: its certificate's signers by name, exactly those of the certificate.
    driver.find_element(By.CSS_SELECTOR, f"{row} a").click()
    wait(driver).until(condition.presence_of_element_located((By.CSS_SELECTOR, "#signers .signer")))
    block = network.call("chain_getBlock", [height])
    expected = sorted(names[signature["validator"]] for signature in block["certificate"]["signatures"])
    shown = sorted(
        badge.get_attribute("data-name")
        for badge in driver.find_elements(By.CSS_SELECTOR, '#signers .signer[data-signed="1"]')
    )
    assert shown == expected, (shown, expected)
    assert len(shown) >= validators["quorum"]
    assert driver.find_element(By.ID, "certificate-view").text.startswith(str(block["certificate"]["view"]))

    # ...and the transfer, with its receipt.
    tx_row = f'#transactions tr[data-hash="{tx_hash}"]'
    wait(driver).until(condition.presence_of_element_located((By.CSS_SELECTOR, tx_row)))
    wait(driver).until(lambda d: "success" in d.find_element(By.CSS_SELECTOR, tx_row).text)
    text = driver.find_element(By.CSS_SELECTOR, tx_row).text
    assert "Transfer" in text and re.search(r"\b5\b", text) and "0000aa" in text, text
    shot(driver, screenshots, "02-block")

    # The transaction page: status, receipt and the exact commands that check it offline.
    driver.find_element(By.CSS_SELECTOR, f'{tx_row} a[href="#/tx/{tx_hash}"]').click()
    wait(driver).until(lambda d: d.find_element(By.ID, "tx-status").text == "committed")
    command = driver.find_element(By.ID, "proof-command").text.replace("Copy", "").strip().splitlines()
    assert command[0] == f"stele query tx-proof {tx_hash} --json --rpc {network.rpc_url()} > proof.json", command
    assert command[1] == "stele verify-proof proof.json --genesis genesis.json", command
    driver.find_element(By.ID, "proof-fetch").click()
    wait(driver).until(lambda d: "Download proof.json" in d.find_element(By.ID, "proof-result").text)
    shot(driver, screenshots, "03-transaction")
    # The commands do what the page says.
    proof = network.dir.parent / "proof.json"
    proof.write_text(network.run("query", "tx-proof", tx_hash, "--json", "--rpc", network.rpc_url()).stdout)
    network.run("verify-proof", str(proof), "--genesis", str(network.genesis))

    # The recipient's account, by searching its address.
    search(driver, RECIPIENT)
    wait(driver).until(condition.presence_of_element_located((By.ID, "account-balance")))
    balance = network.call("state_getAccount", [RECIPIENT])["balance"]
    wait(driver).until(lambda d: d.find_element(By.ID, "account-balance").text.replace(",", "") == str(balance))
    shot(driver, screenshots, "04-account")

    # The charts page draws from the recent blocks.
    open_explorer(driver, network, "/charts")
    wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart-txs rect.bar")) >= 1)
    shot(driver, screenshots, "05-charts")

    # Nothing was refused by the page's Content-Security-Policy, and no script failed.
    assert severe_logs(driver) == []


@pytest.mark.parametrize(
    "query, message",
    [
        ("hello world", "is not something the explorer can look up"),
        ("0x1234", "is not something the explorer can look up"),
        ("987654321", "No block at height 987,654,321 yet"),
        ("0x" + "ab" * 32, "No block and no transaction has the hash"),
        ("0", "Height 0 is the genesis"),
    ],
)
def test_a_bad_search_says_why(driver, network, screenshots, query, message):
    open_explorer(driver, network)
    wait(driver).until(lambda d: d.find_element(By.ID, "stat-height").text.replace(",", "").isdigit())
    search(driver, query)
    wait(driver).until(condition.visibility_of_element_located((By.ID, "search-message")))
    text = driver.find_element(By.ID, "search-message").text
    assert message in text, text
    # The page stays where it was.
    assert driver.find_element(By.CSS_SELECTOR, ".view").get_attribute("data-page") == "overview"
    if query == "hello world":
        shot(driver, screenshots, "06-bad-search")
    assert severe_logs(driver) == []
