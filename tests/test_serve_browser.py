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
        rows = browser.find_elements(By.CSS_SELECTOR, "#bars .row")
        assert [row.get_attribute("data-label") for row in rows] == list(LABELS)
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
        ec.text_to_be_present_in_element((By.ID, "status"), "Error 415"))
    status = browser.find_element(By.ID, "status").text
    assert "not an audio file" in status
    assert not browser.find_element(By.ID, "result").is_displayed()
