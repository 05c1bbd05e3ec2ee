"""The verify stage's fixtures: the verifier page built from its sources once per module."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.verifier_page import BUILD, ROOT, chromium


@pytest.fixture(scope="module")
def built_page(tmp_path_factory) -> Path:
    """The page built from its sources (as `make verifier-page` builds it)."""
    chromium()
    page = tmp_path_factory.mktemp("verifier-page") / "index.html"
    subprocess.run(["node", str(BUILD), str(page)], check=True, cwd=ROOT, capture_output=True)
    return page
