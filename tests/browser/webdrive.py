"""What the browser tests of the web console share: `mroute web` on a free port for a
started topology, a headless Chromium (Selenium with Debian's chromium and chromium-driver),
and waits that look again when a redraw replaced what they found. Fixtures `console` and
`browser` kill and quit everything they started, also when the test failed."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

from ..helpers import MROUTE, end, tagged_processes

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
NEEDS_CHROMIUM = [pytest.mark.timeout(120),
                  pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no chromium and chromedriver on this machine "
                                     "(Debian packages chromium and chromium-driver; .ci/run installs them as root)")]


class Console:
    """`mroute web` on a free port, for the topology `running` runs; stopped afterwards."""

    def __init__(self, running, tag: str):
        self.proc = subprocess.Popen([*MROUTE, "web", "-f", str(running.file), "--port", "0"], cwd=running.directory,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, MROUTE_TEST_TAG=tag))
        said = ""
        while (found := re.search(r"(http://\S+)/\?token=(\S+)", said)) is None:   # the URL, once it serves
            line = self.proc.stderr.readline()
            assert line, f"mroute web ended before serving: {said}"
            said += line
        self.base, self.token = found.group(1), found.group(2)
        # what it says afterwards is read as it comes (a full pipe would stall it), kept for a failure's report
        self.said = [said]
        self.reader = threading.Thread(target=lambda: self.said.extend(iter(self.proc.stderr.readline, "")),
                                       daemon=True)
        self.reader.start()

    def stop(self) -> int:
        code = end(self.proc)
        self.reader.join(5)
        self.proc.stderr.close()
        return code


@pytest.fixture
def console(start_topology):
    tag = f"web-{os.getpid()}-{os.urandom(3).hex()}"
    started = []

    def start(spec):
        running = start_topology(spec)
        started.append(Console(running, tag))
        return running, started[-1]
    yield start
    for web in started:
        if web.proc.poll() is None:
            web.stop()
        print(f"mroute web said:\n{''.join(web.said)}")   # (shown when the test failed)
    left = tagged_processes(tag)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"left behind: {left}"


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opened = []

    def open_one():
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                         "--disable-dev-shm-usage"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})   # what a page's console says
        opened.append(webdriver.Chrome(options=options, service=Service(DRIVER)))
        return opened[-1]
    yield open_one
    for driver in opened:
        driver.quit()


def until(driver, condition, timeout=30):
    """Wait for `condition(driver)`: the pages redraw as news comes, so an element found a
    moment ago may be gone (stale): look again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
                         ).until(lambda d: condition(d))


def on(driver, selector, action, timeout=30):
    """Do `action(element)` on the first element `selector` finds, found again if a redraw
    replaced it meanwhile."""
    def done(d):
        found = css(d, selector)
        if not found:
            return False
        action(found[0])
        return True
    until(driver, done, timeout)


def css(driver, selector):
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, selector)


def status_of(url: str, body: bytes | None = None, **headers: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code


def api(web, path: str, body: dict | None = None):
    """The console's own API, as its pages call it (the token as a bearer): for what a test
    sets up rather than looks at."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(web.base + path, data=data, headers={
        "Authorization": f"Bearer {web.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def page(browser, web, path: str):
    """A new browser window on one of the console's pages, its script started."""
    driver = browser()
    driver.get(f"{web.base}{path}?token={web.token}")
    until(driver, lambda d: "topology" in css(d, "#where")[0].text)
    return driver


def log_in(driver, agent: str, password: str) -> None:
    """On the desk page: log in as `agent`; returns once the desk shows."""
    on(driver, "#agent", lambda e: e.send_keys(agent))
    on(driver, "#password", lambda e: e.send_keys(password))
    on(driver, "#login-button", lambda e: e.click())
    until(driver, lambda d: css(d, "#desk")[0].is_displayed())


def errors(driver) -> list[str]:
    """What the page's console reported as errors (a resource that failed to load, a
    script that threw)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
