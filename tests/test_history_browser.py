"""The upload page's recent-predictions list in headless Chromium: it shows what the server
recorded, adds each new answer, and its Delete button removes the record (needs chromium,
chromium-driver and selenium, as tests/test_serve_browser.py; required under CI)."""

from __future__ import annotations

import httpx
import pytest
from test_history_serve import clip, right_label, serve
from test_serve_browser import _REASON, browser  # noqa: F401 - the browser fixture

pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


def _rows(driver) -> list[tuple[str, str, str]]:
    """(id, label, file name) of the listed rows, read in one script call: the list is
    re-rendered on every refresh, so element handles could go stale between reads."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#history-rows tr')]"
        ".map(r => [r.dataset.id, r.dataset.label, r.cells[1].textContent])")
    return [tuple(r) for r in rows]


def test_page_lists_recent_predictions_and_deletes_one(browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    app, server = serve(f"sqlite:///{tmp_path / 'h.db'}")
    with server as url:
        earlier = [httpx.post(url + "/predict", files={"file": (f"c{i}.wav", clip(i))},
                              timeout=30).json() for i in range(2)]
        browser.get(url + "/")
        wait = WebDriverWait(browser, 20)
        wait.until(lambda d: len(_rows(d)) == 2)
        assert _rows(browser) == [(earlier[1]["id"], right_label(1), "c1.wav"),
                                  (earlier[0]["id"], right_label(0), "c0.wav")]

        name = "<img src=x onerror=alert(1)>.wav"  # shown as text, never as markup
        path = tmp_path / name
        path.write_bytes(clip(2))
        browser.find_element(By.ID, "file").send_keys(str(path))
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), f"{path.name}: done"))
        wait.until(lambda d: len(_rows(d)) == 3)
        newest = _rows(browser)[0]
        assert newest[1:] == (right_label(2), name)
        assert httpx.get(f"{url}/history/{newest[0]}", timeout=10).status_code == 200

        from selenium.common.exceptions import StaleElementReferenceException

        button = f'#history-rows tr[data-id="{newest[0]}"] button.delete'
        WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: d.find_element(By.CSS_SELECTOR, button).click() or True)
        wait.until(lambda d: len(_rows(d)) == 2)
        assert f"Deleted {name}" in browser.find_element(By.ID, "history-status").text
        assert httpx.get(f"{url}/history/{newest[0]}", timeout=10).status_code == 404


def test_page_hides_the_list_when_the_server_keeps_no_history(browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    app, server = serve("none")
    with server as url:
        browser.get(url + "/")
        section = browser.find_element(By.ID, "history")
        WebDriverWait(browser, 20).until(lambda d: section.get_attribute("data-state"))
        assert section.get_attribute("data-state") == "off"  # GET /history answered 404
        assert not browser.find_element(By.ID, "history").is_displayed()
        assert browser.find_element(By.ID, "file").is_enabled()
