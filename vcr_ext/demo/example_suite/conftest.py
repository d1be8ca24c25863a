"""Configuration of the example suite: where cassettes go and which API the client talks to."""

from __future__ import annotations

import os
from pathlib import Path

import openai
import pytest


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    # `vcr-ext demo` records into a temporary folder, and the project's own tests replay
    # the committed copy; by default this is pytest-recording's cassettes/<module>/.
    root = os.environ.get("VCR_EXT_CASSETTE_DIR") or str(Path(request.path).parent / "cassettes")
    return str(Path(root) / Path(request.path).stem)


@pytest.fixture
def base_url() -> str:
    # Replay never connects, so any address does when the demo server is not running.
    return os.environ.get("VCR_EXT_DEMO_BASE_URL", "http://127.0.0.1:9/v1")


@pytest.fixture
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "sk-demo-key"), max_retries=0
    )


@pytest.fixture
def async_client(base_url: str) -> openai.AsyncOpenAI:
    key = os.environ.get("OPENAI_API_KEY", "sk-demo-key")
    return openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0)
