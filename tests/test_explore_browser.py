"""gancli explore in a real browser (headless Chromium through Selenium): load the page, click seeds, move the walk's
slider, pick a class, and compare the images the page shows with the Python API's, byte for byte.

Needs Debian's chromium and chromium-driver (`.ci/run` installs them); without them the tests skip and say why.
GANCLI_EXPLORE_RUN=RUN and GANCLI_SCREENSHOT=PNG make the screenshot for the README from a trained run.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

import gancli

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).parent / "fixtures" / "v0.1.0"


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[test]'")
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("no headless browser here: apt-get install -y chromium chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800",
                 "--force-device-scale-factor=1", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(flag)
    session = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    session.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    yield session
    session.quit()


def shown(element) -> bytes:
    src = element.get_attribute("src")
    assert src.startswith("data:image/png;base64,"), src[:40]
    return base64.b64decode(src.split(",", 1)[1])


def wait_for(browser, condition, seconds: float = 60):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    waiting = WebDriverWait(browser, seconds, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException, IndexError))
    return waiting.until(lambda _: condition())


def settled(browser) -> bool:
    return browser.find_element("tag name", "body").get_attribute("data-busy") == "0"


def test_seeds_walk_and_classes_in_a_real_browser(browser, isolated):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    path = FIXTURES / "cdcgan.safetensors"
    if os.environ.get("GANCLI_EXPLORE_RUN"):  # a trained run for the README's screenshot, shown as runs/<name>
        given = Path(os.environ["GANCLI_EXPLORE_RUN"])
        path = Path("runs") / given.name
        shutil.copytree(given, path)
    g = gancli.load(path, device="cpu")
    with gancli.explorer([path], device="cpu") as server:
        browser.get(server.url)
        wait_for(browser, lambda: len(browser.find_elements("css selector", "#grid img")) == 64 and settled(browser))
        tiles = browser.find_elements("css selector", "#grid img")
        expected = g.sample(seeds=list(range(64)), label=0)
        for tile, image in zip(tiles, expected):  # the page's grid is the API's images
            assert shown(tile) == gancli.png_bytes(image)

        tiles[3].click()
        wait_for(browser, lambda: settled(browser) and browser.find_element("id", "detail-command").text.startswith("gancli sample"))
        assert shown(browser.find_element("id", "detail-img")) == gancli.png_bytes(expected[3])
        assert "--seeds 3 --label 0" in browser.find_element("id", "detail-command").text

        tiles[10].click()
        slider = browser.find_element("id", "walk-slider")
        wait_for(browser, lambda: settled(browser) and slider.get_attribute("max") == "23")
        walk = g.interpolate([3, 10], frames=24, label=0)
        assert shown(browser.find_element("id", "walk-img")) == gancli.png_bytes(walk[0])
        for _ in range(5):
            slider.send_keys(Keys.ARROW_RIGHT)  # a person moving the slider
        wait_for(browser, lambda: slider.get_attribute("value") == "5")
        assert shown(browser.find_element("id", "walk-img")) == gancli.png_bytes(walk[5])
        assert "frame0005.png" in browser.find_element("id", "walk-command").text

        before = tiles[0].get_attribute("src")
        Select(browser.find_element("id", "class")).select_by_value("7")
        wait_for(browser, lambda: settled(browser) and browser.find_element("css selector", "#grid img").get_attribute("src") != before)
        first = browser.find_elements("css selector", "#grid img")[:8]
        for tile, image in zip(first, g.sample(seeds=list(range(8)), label=7)):
            assert shown(tile) == gancli.png_bytes(image)

        browser.find_element("id", "rows-per-class").click()
        wait_for(browser, lambda: settled(browser) and len(browser.find_elements("css selector", "#grid img")) == 80)
        row_of_nines = browser.find_elements("css selector", "#grid img[data-label='9']")
        assert [shown(t) for t in row_of_nines] == [gancli.png_bytes(x) for x in g.sample(seeds=list(range(8)), label=9)]
        browser.find_element("id", "rows-per-class").click()
        wait_for(browser, lambda: settled(browser) and len(browser.find_elements("css selector", "#grid img")) == 64)
        screenshot = os.environ.get("GANCLI_SCREENSHOT") or "explore.png"
        browser.save_screenshot(screenshot)
        from PIL import Image

        assert Image.open(screenshot).size == (1280, 800)
        assert browser.find_element("id", "error").get_attribute("hidden") is not None  # no error shown on the way


def test_stylegan_truncation_mixing_and_a_companion_upscaler_in_a_real_browser(browser, isolated):
    from selenium.webdriver.support.ui import Select

    stylegan, srcnn = FIXTURES / "stylegan.safetensors", FIXTURES / "srcnn.safetensors"
    g, sr = gancli.load(stylegan, device="cpu"), gancli.load(srcnn, device="cpu")
    with gancli.explorer([stylegan, srcnn], device="cpu") as server:  # srcnn, trained on the same digits, is stylegan's companion
        browser.get(server.url)
        wait_for(browser, lambda: len(browser.find_elements("css selector", "#grid img")) == 64 and settled(browser))
        Select(browser.find_element("id", "page-size")).select_by_value("4")
        wait_for(browser, lambda: len(browser.find_elements("css selector", "#grid img")) == 16 and settled(browser))
        browser.execute_script("const t = document.getElementById('truncation'); t.value = 0.5; t.dispatchEvent(new Event('change'));")
        wait_for(browser, lambda: settled(browser) and browser.find_elements("css selector", "#grid img")[0].get_attribute("src")
                 == "data:image/png;base64," + base64.b64encode(gancli.png_bytes(g.sample(seeds=[0], truncation=0.5)[0])).decode())
        tiles = browser.find_elements("css selector", "#grid img")
        tiles[1].click()
        wait_for(browser, lambda: settled(browser) and browser.find_element("id", "detail-up").get_attribute("src"))
        assert shown(browser.find_element("id", "detail-up")) == gancli.png_bytes(g.sample(seeds=[1], truncation=0.5, upscaler=sr)[0])
        assert "--upscale" in browser.find_element("id", "detail-up-command").text
        tiles[2].click()
        wait_for(browser, lambda: settled(browser) and browser.find_element("id", "mix-img").get_attribute("src"))
        layer = int(browser.find_element("id", "mix-layer").get_attribute("value"))
        assert shown(browser.find_element("id", "mix-img")) == gancli.png_bytes(g.mix([1], 2, mix_layer=layer, truncation=0.5)[1])
        browser.find_element("id", "variations-button").click()
        wait_for(browser, lambda: settled(browser) and len(browser.find_elements("css selector", "#variations img")) == 8)
