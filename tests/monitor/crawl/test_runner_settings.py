"""The crawler's process-wide Scrapy settings: every component they name is loaded before the
first crawl starts (without installing a reactor), and a misnamed one fails then, not in the
middle of a crawl."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scrapy.settings import Settings as ScrapySettings

from config import load_settings
from monitor.crawl.runner import load_components, scrapy_settings

REPO = Path(__file__).resolve().parents[3]

# In a fresh interpreter: which of these modules load_components imported.
_PROBE = """
import json, sys
from scrapy.settings import Settings
from config import load_settings
from monitor.crawl.runner import load_components, scrapy_settings
watched = sys.argv[1:]
before = {name for name in watched if name in sys.modules}
load_components(Settings(scrapy_settings(load_settings(environ={}))))
print(json.dumps({"before": sorted(before),
                  "after": sorted(name for name in watched if name in sys.modules),
                  "reactor": "twisted.internet.reactor" in sys.modules}))
"""


def test_the_components_scrapy_would_import_during_the_crawl_are_loaded_before_it() -> None:
    watched = ["scrapy.core.downloader.handlers.http11",  # the HTTP(S) download handler
               "scrapy.downloadermiddlewares.robotstxt",
               "scrapy.extensions.throttle",
               "scrapy.spidermiddlewares.depth",
               "monitor.crawl.host_slots"]  # one of ours, by its dotted path
    done = subprocess.run([sys.executable, "-c", _PROBE, *watched], cwd=REPO, check=True,
                          capture_output=True, text=True, timeout=120)
    loaded = json.loads(done.stdout)
    assert "scrapy.core.downloader.handlers.http11" not in loaded["before"]
    assert loaded["after"] == sorted(watched)
    # Importing twisted.internet.reactor installs the default reactor: Scrapy's asyncio
    # reactor could then not be installed (PITFALLS.md).
    assert loaded["reactor"] is False


def test_a_misnamed_component_fails_before_any_crawl_starts() -> None:
    settings = scrapy_settings(load_settings(environ={}))
    settings["DOWNLOADER_MIDDLEWARES"] = {**settings["DOWNLOADER_MIDDLEWARES"],
                                          "monitor.crawl.guard.NoSuchMiddleware": 70}
    with pytest.raises(NameError, match="NoSuchMiddleware"):
        load_components(ScrapySettings(settings))


def test_a_disabled_component_is_not_loaded() -> None:
    settings = scrapy_settings(load_settings(environ={}))
    settings["DOWNLOADER_MIDDLEWARES"] = {**settings["DOWNLOADER_MIDDLEWARES"],
                                          "no.such.module.Middleware": None}
    load_components(ScrapySettings(settings))  # None: off, so never imported

