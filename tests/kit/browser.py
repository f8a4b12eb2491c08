"""A real browser for the portal's tests: Debian's chromium, headless, driven by Selenium through Debian's
chromedriver (never a driver or browser download: the machine has no network), each with a fresh profile; and
screenshots of the pages, kept with the test's files and copied to test-artifacts/web/ in the checkout."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from .tools import tool

__all__ = ["ARTIFACTS", "Browser", "chromium"]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1000,1100")


class Browser:
    """A driver and where its screenshots go."""

    def __init__(self, driver: webdriver.Chrome, shots: Path, base_url: str = "") -> None:
        self.driver = driver
        self.shots = shots
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def fill(self, css: str, text: str) -> None:
        element = self.find(css)
        element.clear()
        element.send_keys(text)

    def click(self, css: str) -> None:
        """Click what submits a form or follows a link, and wait until the next page has replaced this one (a click
        returns before the browser has navigated: the next step would race it)."""
        # A mark on this page's window: the next page has a window of its own. (Waiting for this page's element to
        # go stale races: chromedriver may answer "node does not belong to the document" instead of "stale".)
        self.driver.execute_script("window.__leftBehind = true")
        self.find(css).click()
        WebDriverWait(self.driver, 15, ignored_exceptions=(WebDriverException,)).until(
            lambda driver: driver.execute_script("return !window.__leftBehind && document.readyState === 'complete'"))

    def submit(self, form: str) -> None:
        self.click(f"{form} button[type=submit]")

    @property
    def text(self) -> str:
        return str(self.find("main").text)

    @property
    def path(self) -> str:
        url = str(self.driver.current_url)
        return url[len(self.base_url):] if url.startswith(self.base_url) else url

    def shot(self, name: str) -> Path:
        """A PNG of the page now, in the test's folder and in test-artifacts/web/."""
        safe = re.sub(r"[^a-z0-9_-]+", "-", name.lower())
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{safe}.png"
        assert self.driver.save_screenshot(str(path)), name
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ARTIFACTS / path.name)
        return path


@contextmanager
def chromium(folder: Path, base_url: str = "") -> Iterator[Browser]:
    """Headless chromium with a fresh profile in `folder`."""
    tool("chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={folder / 'profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield Browser(driver, folder / "screenshots", base_url)
    finally:
        driver.quit()
