"""A real browser sees the lab manual: one lesson page of the built site in headless Chromium.

Debian's chromium and chromium-driver (make browser), no browser download. The page must show
its variant's code (quoted from the module by a snippet section), its pictures loaded, and the
navigation to the other lessons. It leaves a screenshot of the page in build/docs-lesson.png,
also when a check fails.
"""

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "site"
PAGE = "lessons/02-threads/"
MODULE = REPO / "server/echolab_server/variants/threads.py"
SCREENSHOT = REPO / "build/docs-lesson.png"


def lesson_lines(module):
    """The code lines of a module's snippet section ``lesson``, as the page must show them."""
    section = re.search(r"\[start:lesson\]\n(.*?)\n[^\n]*\[end:lesson\]", module.read_text(), re.S)
    assert section, f"{module} has no lesson section"
    lines = [line.strip() for line in section.group(1).splitlines()]
    return [line for line in lines if line and "--8<--" not in line]  # nested markers: not shown


@pytest.fixture(scope="module")
def site_url():
    if not (SITE / PAGE / "index.html").is_file():
        pytest.fail(f"no {SITE / PAGE}index.html: build the site first (make docs)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=SITE)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_address[1]}/"
        server.shutdown()


@pytest.fixture(scope="module")
def browser():
    for program in ("chromium", "chromedriver"):
        if not shutil.which(program):
            pytest.fail(f"no {program} on PATH: make browser installs Debian's")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def test_a_lesson_page_shows_its_code_pictures_and_navigation(site_url, browser):
    browser.get(site_url + PAGE)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))  # first, so a failure can be looked at
    assert "threads" in browser.title

    code = "\n".join(block.text for block in browser.find_elements(By.CSS_SELECTOR, "article pre"))
    missing = [line for line in lesson_lines(MODULE) if line not in code]
    assert not missing, f"the page lacks these lines of {MODULE.name}'s lesson: {missing}"

    pictures = browser.find_elements(By.CSS_SELECTOR, "article img")
    assert pictures, "the lesson page has no picture"
    for picture in pictures:
        loaded = browser.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", picture
        )
        assert loaded, f"picture not loaded: {picture.get_attribute('src')}"

    links = {link.get_attribute("href") for link in browser.find_elements(By.CSS_SELECTOR, "nav a")}
    for lesson in ("01-simple/", "03-lock/", "12-protocol/"):
        assert any(href and href.endswith(lesson) for href in links), (
            f"no link to {lesson} in the nav"
        )
