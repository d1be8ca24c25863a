"""Shared fixtures: where the shared corpus lives, and the seed recording."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import openai
import pytest

REPO = Path(__file__).resolve().parent.parent
OPENAI_MAJOR = int(openai.__version__.split(".")[0])
# openai 2.x's async .stream() helper refuses tools that are not strict before sending
# anything, and 2.x has no helper to parse Responses tool arguments into a model.
needs_openai_3 = pytest.mark.skipif(
    OPENAI_MAJOR < 3, reason="the openai 2.x SDK has no such client behaviour"
)


def ask_chat(base_url: str, question: str) -> str:
    """One non-streamed chat completion over plain httpx (patched by vcrpy like the SDK's)."""
    reply = httpx.post(
        base_url + "/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]},
        timeout=30,
    )
    reply.raise_for_status()
    content: str = reply.json()["choices"][0]["message"]["content"]
    return content


def corpus_path() -> Path:
    """``$VCR_EXT_CORPUS``, by default the shared corpus beside the checkout."""
    return Path(os.environ.get("VCR_EXT_CORPUS") or REPO.parent / "shared" / "corpus")


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    path = corpus_path()
    if not path.is_dir():
        pytest.skip(f"shared corpus not found at {path}: set VCR_EXT_CORPUS to the corpus folder")
    return path


@pytest.fixture(scope="session")
def seed_file(corpus_dir: Path) -> Path:
    # The seed recording sits beside the corpus in the shared material.
    candidates = sorted((corpus_dir.parent / "seed").glob("*.json"))
    if not candidates:
        pytest.skip(f"seed recording not found in {corpus_dir.parent / 'seed'}")
    return candidates[0]


pytest_plugins = ["pytester"]
