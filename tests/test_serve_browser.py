"""The upload page in headless Chromium: choose a file, see the label the API gives for it.

Needs the Debian packages ``chromium`` and ``chromium-driver`` and the pip package ``selenium``.
Skipped when they are missing, except under CI (``CI`` set), where it must run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
import torch

from ser.labels import LABELS
from ser.model import EmotionClassifier
from ser.serve import ServerThread, create_app

RATE = 16000
ENGLISH = {"marah": "anger", "jijik": "disgust", "takut": "fear", "bahagia": "happiness",
           "netral": "neutral", "sedih": "sadness"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)


def _find(names: tuple[str, ...]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the pip package selenium is not installed (pip install selenium)"
    if _find(BROWSERS) is None or _find(DRIVERS) is None:
        return ("headless Chromium is not installed "
                "(apt-get install -y chromium chromium-driver)")
    return None


_REASON = _missing()
if _REASON and os.environ.get("CI", "").lower() not in ("", "0", "false"):
    raise RuntimeError(f"CI is set, so the browser test must run, but {_REASON}")
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> str:
    torch.manual_seed(1)
    model = EmotionClassifier("tiny").export(tmp_path_factory.mktemp("browser") / "model")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with ServerThread(create_app(model, recognizer_options={"device": "cpu"})) as url:
        yield url
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _find(BROWSERS)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(_find(DRIVERS)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _clip(tmp_path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(RATE) / RATE
    wave = 0.3 * np.sin(2 * np.pi * rng.uniform(90, 250) * t) + rng.normal(0, 0.1, t.size)
    path = tmp_path / f"clip{seed}.wav"
    sf.write(path, (0.5 * wave / np.abs(wave).max()).astype(np.float32), RATE)
    return path


def test_upload_page_shows_the_api_label_and_six_bars(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    for seed in (0, 1):
        path = _clip(tmp_path, seed)
        api = httpx.post(server + "/predict", files={"file": (path.name, path.read_bytes())},
                         timeout=30).json()
        browser.find_element(By.ID, "file").send_keys(str(path))
        WebDriverWait(browser, 20).until(
            ec.text_to_be_present_in_element((By.ID, "status"), f"{path.name}: done"))
        label = browser.find_element(By.ID, "label").text
        assert label == api["emotion"]
        assert browser.find_element(By.ID, "label-en").text == f"({ENGLISH[label]})"
        rows = browser.find_elements(By.CSS_SELECTOR, "#bars .row")
        # Highest probability first, each Indonesian label with its English name beside it.
        by_probability = sorted(LABELS, key=lambda k: -api["probabilities"][k])
        assert [row.get_attribute("data-label") for row in rows] == by_probability
        assert [row.find_element(By.CSS_SELECTOR, ".name").text for row in rows] == [
            f"{k} ({ENGLISH[k]})" for k in by_probability]
        widths = [row.find_element(By.CSS_SELECTOR, ".bar").get_attribute("style")
                  for row in rows]
        shown = {row.get_attribute("data-label"): float(w.split("width:")[1].split("%")[0])
                 for row, w in zip(rows, widths)}
        for name, p in api["probabilities"].items():
            assert shown[name] == pytest.approx(100 * p, abs=0.06)


def test_upload_page_shows_the_reason_for_a_bad_file(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"this is not sound at all, just text" * 4)
    browser.find_element(By.ID, "file").send_keys(str(bad))
    WebDriverWait(browser, 20).until(
        ec.text_to_be_present_in_element((By.ID, "status"), "(error 415)"))
    status = browser.find_element(By.ID, "status").text
    assert status.startswith("Could not analyse notes.wav (error 415): ")
    assert "not an audio file: it looks like plain text" in status
    assert "b'" not in status and "\\x" not in status
    assert not browser.find_element(By.ID, "result").is_displayed()


def test_png_upload_is_explained_in_plain_words(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    png = tmp_path / "photo.wav"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(3000))
    browser.find_element(By.ID, "file").send_keys(str(png))
    WebDriverWait(browser, 20).until(
        ec.text_to_be_present_in_element((By.ID, "status"), "(error 415)"))
    status = browser.find_element(By.ID, "status").text
    assert "it looks like a PNG image" in status
    assert "b'" not in status and "\\x" not in status and "PNG\\r" not in status


def test_keyboard_tab_reaches_the_chooser_and_enter_opens_it(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server + "/")
    # Record what opening the chooser does: a click on the file input.
    browser.execute_script(
        "window.opened = 0;"
        "document.getElementById('file').addEventListener('click', () => window.opened++);")
    body = browser.find_element(By.TAG_NAME, "body")
    reached = None
    for presses in range(1, 6):
        (body if presses == 1 else browser.switch_to.active_element).send_keys(Keys.TAB)
        if browser.switch_to.active_element.get_attribute("id") == "choose":
            reached = presses
            break
    assert reached == 1, "Tab does not reach the file chooser first"
    chooser = browser.switch_to.active_element
    assert chooser.tag_name == "button" and chooser.is_displayed()
    assert browser.execute_script("return window.opened") == 0
    chooser.send_keys(Keys.ENTER)
    assert browser.execute_script("return window.opened") == 1


def test_drop_zone_is_a_block_and_draws_over_no_text(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    drop = browser.find_element(By.ID, "drop")
    assert drop.tag_name == "div" and drop.value_of_css_property("display") == "block"
    box = drop.rect
    for other in browser.find_elements(By.CSS_SELECTOR, "h1, body > p, #status"):
        r = other.rect
        overlap = (min(box["y"] + box["height"], r["y"] + r["height"]) - max(box["y"], r["y"]))
        assert overlap <= 0, (other.tag_name, r, box)
