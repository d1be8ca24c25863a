"""Real vcrpy cassettes recorded by another project (pydantic-ai) against live provider APIs.

They are read from the shared corpus (``$VCR_EXT_CORPUS/providers/pydantic-ai``), never copied:
pydantic-ai's serializer stores JSON bodies parsed, under ``parsed_body``, and Bedrock's binary
event streams and SSE streams as vcrpy writes them.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vcr_ext import Persister
from vcr_ext.formats import vcrpy as vcrpy_format


def _cassettes(corpus_dir: Path) -> list[Path]:
    folder = corpus_dir / "providers" / "pydantic-ai"
    if not folder.is_dir():
        pytest.skip(f"no provider cassettes in {folder}")
    return sorted(folder.glob("*/*.yaml"))


def test_every_provider_cassette_reads_as_records(corpus_dir: Path) -> None:
    cassettes = _cassettes(corpus_dir)
    assert len(cassettes) >= 250
    failures = {}
    for path in cassettes:
        try:
            records = vcrpy_format.read(path)
        except Exception as err:
            failures[path.name] = f"{type(err).__name__}: {err}"
            continue
        assert records, path
    assert failures == {}


def _comparable(body: bytes, content_type: str) -> Any:
    """What a client reads from a body, less the per-call ids and times a recording normalizes."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    if "json" in content_type:
        return _without_ids(json.loads(body))
    if "event-stream" in content_type:
        events = []
        for line in body.decode("utf-8").splitlines():
            if line.startswith("data:"):
                data = line[5:].strip()
                events.append(data if data == "[DONE]" else _without_ids(json.loads(data)))
        return events
    return body


def _without_ids(value: Any) -> Any:
    return (
        {k: v for k, v in value.items() if k not in ("id", "created")} if isinstance(value, dict) else value
    )


def _content_type(response: dict[str, Any]) -> str:
    for name, values in response.get("headers", {}).items():
        if name.lower() == "content-type":
            return str(values[0] if isinstance(values, list) else values)
    return ""


@pytest.mark.parametrize(
    "provider", ["anthropic", "google", "groq", "mistral", "cohere", "huggingface", "bedrock"]
)
def test_a_converted_provider_cassette_replays_what_the_original_did(
    corpus_dir: Path, tmp_path: Path, provider: str
) -> None:
    cassettes = [p for p in _cassettes(corpus_dir) if p.parent.name == provider]
    if not cassettes:
        pytest.skip(f"no {provider} cassettes in the corpus")
    source = cassettes[0]
    out = tmp_path / "converted"
    command = [sys.executable, "-m", "vcr_ext.cli.main", "convert", str(source), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    original = vcrpy_format.read_interactions(source)
    _, responses = Persister().load_cassette(out)
    assert len(responses) == len(original)
    for (_, live), replayed in zip(original, responses, strict=True):
        assert replayed["status"]["code"] == live["status"]["code"]
        kind = _content_type(live)
        assert _comparable(replayed["body"]["string"], kind) == _comparable(live["body"]["string"], kind), (
            source
        )
