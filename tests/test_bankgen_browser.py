"""The HTML review page in a real headless browser (Debian's chromium + chromedriver, via selenium):
keyboard and mouse decisions, an edit, notes, persistence across a reload, and the decisions file
saved as a real download; then import, release, validation and a probe of the released bank."""

import importlib.util
import json
import shutil
import time

import pytest

from akb.bankgen.review import write_review_html
from akb.cli import main
from akb.io import read_jsonl, write_jsonl
from bankgen_fixtures import record, review_records
from conftest import require_optional

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path):
    require_optional("chromium", bool(CHROMIUM and CHROMEDRIVER and importlib.util.find_spec("selenium")),
                     "apt-get install -y chromium chromium-driver; selenium comes with the `test` extra")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def _keys(driver, *keys):
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*keys).perform()


def _current(driver):
    return driver.find_element("css selector", ".card.current").get_attribute("data-id")


def _progress(driver):
    return driver.find_element("id", "progress").text


def test_review_page_decisions_import_into_a_bank_that_validates_and_probes(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    records = review_records()
    write_jsonl(tmp_path / "checked.jsonl", records)
    write_review_html(records, tmp_path / "review.html", "Review test")
    browser.get((tmp_path / "review.html").as_uri())
    assert _progress(browser).startswith("0/5 decided") and _current(browser) == "gen-1"
    assert "generator wrong" in browser.find_element("id", "card-1").text  # the cross-check flag is shown

    reviewer = browser.find_element("id", "reviewer")
    reviewer.send_keys("Ada", Keys.ESCAPE)
    _keys(browser, "a")  # accept gen-1, move on
    _keys(browser, "r")  # reject gen-2
    assert _current(browser) == "gen-3"
    _keys(browser, "e")  # edit gen-3: the answer moves to C
    card = browser.find_element("id", "card-2")
    option_b, option_c = card.find_elements("css selector", ".ed-option")[1:3]
    option_b.clear()
    option_b.send_keys("moderately")
    option_c.clear()
    option_c.send_keys("very softly")
    answer = card.find_element("css selector", ".ed-answer")
    answer.clear()
    answer.send_keys("c", Keys.CONTROL, Keys.ENTER)
    assert _current(browser) == "gen-4"
    _keys(browser, "k")
    assert _current(browser) == "gen-3"
    assert "(C) very softly" in browser.find_element("id", "card-2").text
    _keys(browser, Keys.ARROW_DOWN)
    _keys(browser, "n")  # notes of gen-4
    _keys(browser, "clear wording", Keys.ESCAPE)
    browser.find_element("css selector", "#card-3 button.accept").click()  # the mouse works too
    assert _current(browser) == "gen-5"
    _keys(browser, "a")
    assert _progress(browser) == "5/5 decided (accepted 3, edited 1, rejected 1)"

    # Decisions survive a reload (localStorage). Chromium hands a page's storage writes to the browser
    # process asynchronously, so a reload a few milliseconds after the last key can still miss it.
    for _ in range(25):
        browser.refresh()
        if _progress(browser).startswith("5/5"):
            break
        time.sleep(0.2)
    assert _progress(browser) == "5/5 decided (accepted 3, edited 1, rejected 1)"
    assert browser.find_element("id", "card-1").get_attribute("data-decision") == "reject"

    _keys(browser, "s")  # save: a real download
    saved = browser.downloads / "decisions.json"
    for _ in range(100):
        if saved.is_file() and saved.stat().st_size:
            break
        time.sleep(0.1)
    decisions = json.loads(saved.read_text())
    assert decisions["reviewer"] == "Ada" and decisions["decisions"]["gen-4"]["notes"] == "clear wording"
    assert decisions["decisions"]["gen-3"]["edited"]["answer"] == "C"

    verified, release = tmp_path / "verified.jsonl", tmp_path / "release/mine-1.0.0.jsonl"
    assert main(["bankgen-import", "--checked", str(tmp_path / "checked.jsonl"), "--decisions", str(saved),
                 "--require-all", "--out", str(verified), "--summary", str(tmp_path / "summary.json")]) == 0
    rows = read_jsonl(verified)
    assert [r["id"] for r in rows] == ["gen-1", "gen-3", "gen-4", "gen-5"]
    assert rows[1]["provenance"]["review"] | {"saved_at": None} == {
        "decision": "edit", "notes": "", "reviewer": "Ada", "saved_at": None, "edited_fields": ["options", "answer"],
        "original": {"options": records[2]["options"], "answer": "B"}}
    assert rows[2]["provenance"]["review"]["notes"] == "clear wording"
    assert main(["bankgen-release", "--bank", str(verified), "--name", "mine", "--version", "1.0.0", "--strict",
                 "--out", str(release), "--manifest", str(tmp_path / "release/manifest.json")]) == 0
    assert main(["validate-bank", str(release)]) == 0

    # the probe stage answers the released bank as it is
    model = json.dumps({"name": "tiny-llama", "backend": "tiny", "source": "llama"})
    out = tmp_path / "probe.jsonl"
    assert main(["probe", "--bank", str(release), "--model", model, "--mode", "loglik", "--out", str(out)]) == 0
    assert sorted(r["id"] for r in read_jsonl(out)) == ["gen-1", "gen-3", "gen-4", "gen-5"]


def test_an_empty_sheet_says_why_it_is_empty(browser, tmp_path):
    """The demo's weak generator can leave nothing for review: the page points at the report."""
    write_review_html([], tmp_path / "review.html", "Empty review")
    browser.get((tmp_path / "review.html").as_uri())
    assert "report.md" in browser.find_element("id", "empty").text
    assert browser.find_elements("css selector", ".card") == []


def test_item_text_holding_html_is_shown_as_text_and_never_runs(browser, tmp_path):
    """A generated item is model output: markup in it must reach the reviewer as the characters it is."""
    # The script tag also tries to end the page's JSON data element early; the image would run its
    # handler if the text were ever set as HTML (a script added that way does not run).
    payload, handler = "<script>window.__pwned=1</script><b>x</b>", '<img src="x" onerror="window.__pwned=2">'
    planted = record("gen-x", f"Which is it? {payload}", [payload, handler, "three", "four"], "A")
    write_review_html([planted], tmp_path / "review.html", "Review test")
    browser.get((tmp_path / "review.html").as_uri())
    card = browser.find_element("id", "card-0")
    assert f"Which is it? {payload}" in card.text and f"(A) {payload}" in card.text and f"(B) {handler}" in card.text
    assert card.find_elements("css selector", "script, b, img") == []  # no element came out of the text
    assert browser.execute_script("return window.__pwned === undefined")
