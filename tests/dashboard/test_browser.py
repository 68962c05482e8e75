"""The dashboard end to end in headless Chromium against a real `hwnas serve`.

One user's whole session, in order (the tests share the module's server): sign in with
the keyboard; add a device (a bad form first: the API's error shows by its field);
download its kit (a real kit job) and measure it here as a board would; upload the
measurements; fit a predictor and see its predicted-vs-measured points; start a small
search (a bad budget first), watch it reach 100% live, count the Pareto chart's points
against report.json, download the model; cancel another search; and read it all at phone
width. A bad token shows a message. Each page is saved as a screenshot.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard.conftest import LiveServer, screenshot
from tests.service.conftest import NB201

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect
pytestmark = pytest.mark.slow
SEARCH_TIMEOUT_MS = 240_000


def sign_in(page: Any, live: LiveServer) -> None:
    page.goto("/ui/")
    token = page.get_by_label("API token")
    token.wait_for()
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(live.token)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Devices", level=1).wait_for()


def unlabelled_controls(page: Any) -> list[str]:
    """Visible form controls with no label, and buttons with no accessible text."""
    return page.evaluate("""() => [...document.querySelectorAll('input, select, button')]
        .filter((el) => el.offsetParent !== null)
        .filter((el) => el.tagName === 'BUTTON' ? !el.textContent.trim()
                        && !el.getAttribute('aria-label')
                        : !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML.slice(0, 80))""")


def overflowing(page: Any) -> list[str]:
    """Elements that stick out past the right edge of the viewport (phone width)."""
    return page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
        .filter((el) => !el.closest('.scroll'))
        .map((el) => `${el.tagName}.${el.className?.baseVal ?? el.className}#${el.id}`)
        .slice(0, 10)""")


def nav(page: Any, name: str) -> Any:
    """The main navigation's link `name`."""
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def points(page: Any, chart: str, trace: str) -> int:
    """How many markers Plotly drew in one trace of the chart `chart` (a CSS selector)."""
    return page.locator(f"{chart} .scatterlayer .trace{trace} .point").count()


def test_bad_token_shows_a_message(page: Any) -> None:
    page.goto("/ui/")
    page.get_by_label("API token").fill("hwnas_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("not accepted")
    expect(alert).to_contain_text("hwnas admin token")
    expect(page.get_by_label("API token")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "01-sign-in-bad-token")


def test_device_kit_measurements_predictor(page: Any, live: LiveServer,
                                           tmp_path: Path) -> None:
    sign_in(page, live)
    assert not unlabelled_controls(page)
    page.get_by_role("button", name="Add device").click()
    name = page.get_by_label("Name", exact=True)
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-name-error")).to_contain_text("should match pattern")
    name.fill("laptop")
    page.get_by_label("Backend").select_option("onnxruntime")
    page.get_by_label("Hardware").fill("this test machine")
    page.get_by_role("button", name="Add device").click()
    page.get_by_role("heading", name="laptop", level=1).wait_for()

    page.get_by_label("Space", exact=True).select_option("nb201")
    for key, value in NB201.items():
        page.get_by_label(key, exact=True).fill(str(value))
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Download kit").click()
    kit = tmp_path / download.value.suggested_filename
    download.value.save_as(kit)
    assert kit.name == "kit-nb201-onnx.zip"
    measurements = tmp_path / "measurements.json"
    subprocess.run([sys.executable, "-m", "profilers", "run", str(kit), "--backend",
                    "onnxruntime", "--runs", "5", "--rounds", "2", "--quiet", "-o",
                    str(measurements)], check=True)

    page.get_by_label("Measurements file").set_input_files(str(measurements))
    page.get_by_role("button", name="Upload").click()
    doc = json.loads(measurements.read_text())
    expect(page.locator("#upload-result")).to_contain_text(
        f"{len(doc['cells']) + len(doc['archs'])} added", timeout=60_000)
    expect(page.get_by_role("progressbar", name="share of the LUT measured").first) \
        .to_have_attribute("value", "100")

    page.get_by_label("Predictor kind").select_option("lut")
    page.get_by_role("button", name="Fit predictor").click()
    page.locator("#accuracy-chart .scatterlayer").wait_for(timeout=120_000)
    report = httpx.get(f"{live.url}/v1/devices/1/predictor", headers=live.headers).json()
    judged = report["report"]["points"]
    assert judged and len(judged) == report["report"]["accuracy"]["archs"]
    assert points(page, "#accuracy-chart", ":last-child") == len(judged)
    assert page.get_by_text("Within ±10%").is_visible()
    assert not unlabelled_controls(page)
    screenshot(page, "02-device")

    nav(page, "Devices").click()
    row = page.get_by_role("row", name=re.compile("laptop"))
    row.wait_for()
    assert "onnxruntime" in row.inner_text() and "%" in row.inner_text()
    screenshot(page, "03-devices")


def test_search_live_progress_pareto_and_downloads(page: Any, live: LiveServer,
                                                   tmp_path: Path) -> None:
    sign_in(page, live)
    nav(page, "Searches").click()
    page.get_by_role("heading", name="Start a search").wait_for()
    assert not unlabelled_controls(page)
    page.get_by_label("Space", exact=True).select_option("nb201")
    for key, value in NB201.items():
        page.get_by_label(key, exact=True).fill(str(value))
    page.get_by_label("Accuracy estimator").select_option("params")
    page.get_by_label("Search strategy").select_option("random")
    page.get_by_label("Evaluations").fill("8")
    page.get_by_label("Time limit (minutes)").fill("5")
    page.get_by_role("button", name="Start search").click()
    budget = page.get_by_label("Latency budget (ms)")
    expect(page.locator("#f-targets-0-budget_ms-error")).to_contain_text("required")
    expect(budget).to_have_attribute("aria-invalid", "true")
    screenshot(page, "04-search-form-error")

    measured = [p["measured_ms"] for p in httpx.get(
        f"{live.url}/v1/devices/1/predictor", headers=live.headers).json()["report"]["points"]]
    budget.fill(f"{2 * max(measured):.4f}")
    train_minutes, train_epochs = (page.get_by_label("Train minutes (optional)"),
                                   page.get_by_label("Train epochs (optional)"))
    train_minutes.fill("1")
    train_epochs.fill("2")
    page.get_by_role("button", name="Start search").click()
    expect(page.locator(".form-error")).to_contain_text("give one training budget, not both")
    train_minutes.fill("")
    train_epochs.fill("")
    page.get_by_role("button", name="Start search").click()
    page.get_by_role("heading", name=re.compile(r"^Search \d+$"), level=1).wait_for()
    search_id = int(page.url.rsplit("/", 1)[1])
    progress = page.get_by_role("progressbar", name="search progress")
    seen = set()
    while page.locator(".state-succeeded").count() == 0:
        state = page.locator("#search-status .state").inner_text()
        assert "failed" not in state and "cancelled" not in state, (
            state, page.locator("#search-status").inner_text())
        seen.add(int(progress.get_attribute("value")))
        page.wait_for_timeout(250)
        assert len(seen) < 10_000
    assert progress.get_attribute("value") == "100"
    assert len(seen) >= 2, f"progress was not seen moving: {seen}"

    pareto = page.locator("#pareto-chart")
    pareto.locator(".scatterlayer").wait_for(timeout=SEARCH_TIMEOUT_MS)
    report = httpx.get(f"{live.url}/v1/searches/{search_id}/artifacts/report.json",
                       headers=live.headers).json()
    assert points(page, "#pareto-chart", ":first-child") == len(report["pareto"])
    assert points(page, "#pareto-chart", ":last-child") == len(report["targets"])
    assert page.locator("#best-chart .scatterlayer .point").count() == report["evaluations"]
    strip = page.get_by_role("list", name="The chosen arch, one op per layer")
    assert strip.locator("li").count() == 6
    assert page.locator("#pareto-chart .shapelayer path").count() == len(report["targets"])

    files = {a["name"]: a["bytes"] for a in httpx.get(
        f"{live.url}/v1/searches/{search_id}/artifacts", headers=live.headers).json()}
    for name in files:
        assert page.get_by_role("button", name=f"Download {name}").is_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download model.onnx").click()
    model = tmp_path / "model.onnx"
    download.value.save_as(model)
    assert download.value.suggested_filename == "model.onnx"
    assert model.stat().st_size == files["model.onnx"]
    assert not unlabelled_controls(page)
    screenshot(page, "05-search")

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(500)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, overflowing(page)
    screenshot(page, "06-search-phone")
    nav(page, "Searches").click()
    page.get_by_role("heading", name="Start a search").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, overflowing(page)
    screenshot(page, "07-searches-phone")


def test_keyboard_navigation_and_cancel(page: Any, live: LiveServer) -> None:
    sign_in(page, live)
    active = "document.activeElement.textContent"
    assert page.evaluate(active) == "Devices"  # the new page's heading has the focus
    for expected in ("Sign out", "Searches", "Devices", "Skip to content"):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(active) == expected
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.url.endswith("#/devices")
    for expected in ("Sign out", "Searches"):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(active) == expected
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Start a search").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "space"
    created = httpx.post(f"{live.url}/v1/searches", headers=live.headers, json={
        "space": "nb201", "params": NB201, "estimator": "params", "strategy": "random",
        "targets": [{"device_id": 1, "budget_ms": 100.0}],
        "limits": {"evaluations": 5000, "minutes": 5}}).json()
    page.goto(f"/ui/#/searches/{created['id']}")
    page.get_by_role("button", name="Cancel search").click()
    expect(page.locator(".state-cancelled")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Cancel search")).to_have_count(0)
    screenshot(page, "08-search-cancelled")
