"""Fixtures: the gateways `run-tests.sh` started (their URLs and keys in the environment) and the
fake upstream the `fake/openai` model points at (started here, on `PRISM_FAKE_PORT`)."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from fake_upstream import FakeUpstream


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeUpstream]:
    server = FakeUpstream(int(os.environ.get("PRISM_FAKE_PORT", "0")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def base_url() -> str:
    return os.environ["PRISM_BASE_URL"]


@pytest.fixture(scope="session")
def api_key() -> str:
    return os.environ["PRISM_API_KEY"]
