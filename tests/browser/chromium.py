"""Debian's Chromium driven by Playwright: launch options and page helpers for browser tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
NPM_CACHE = ROOT / "tests" / ".cache" / "npm"
CHROMIUM = os.environ.get("DJANGO_SSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REQUIRE_SERVICES = os.environ.get("DJANGO_SSE_REQUIRE_SERVICES") == "1"


def _missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(reason + " and DJANGO_SSE_REQUIRE_SERVICES=1")
    pytest.skip(reason)


@dataclass
class Console:
    """Every console message and uncaught page error of one page."""

    messages: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        return [text for kind, text in self.messages if kind == "error"] + self.page_errors


def launch_chromium() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def npm_file(package: str, member: str) -> Path:
    """A file of an npm package, fetched once with ``npm pack`` into a gitignored cache.

    Third-party browser code is never committed: the tests fetch it, or skip when the registry
    cannot be reached (and fail when DJANGO_SSE_REQUIRE_SERVICES=1).
    """
    name = package.rsplit("@", 1)[0]
    target = NPM_CACHE / name / member
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        _missing(f"npm is not installed, so {package} cannot be fetched")
        raise AssertionError  # unreachable: _missing skips or fails
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            [npm, "pack", package, "--pack-destination", str(NPM_CACHE), "--silent"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _missing(f"npm pack {package} timed out: is the registry reachable?")
        raise AssertionError from None
    if result.returncode != 0:
        _missing(f"npm pack {package} failed (registry unreachable?): {result.stderr.strip()}")
    tarball = NPM_CACHE / result.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as archive:
        extracted = archive.extractfile("package/" + member)
        if extracted is None:
            raise AssertionError(f"{package} has no {member}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(extracted.read())
    tarball.unlink()
    return target
