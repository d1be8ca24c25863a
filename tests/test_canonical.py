"""API routes and canonical bodies."""

from __future__ import annotations

import pytest

from vcr_ext import canonical


@pytest.mark.parametrize(
    ("url", "route"),
    [
        ("https://api.openai.com/v1/chat/completions", "/v1/chat/completions"),
        ("https://api.openai.com/v1/v1/chat/completions", "/v1/chat/completions"),
        ("https://api.fireworks.ai/inference/v1/v1/chat/completions", "/v1/chat/completions"),
        ("https://x.azure.com/openai/v1/v1/embeddings?api-version=2024-10-21", "/v1/embeddings"),
        (
            "https://x.azure.com/openai/deployments/gpt4/chat/completions?api-version=1",
            "/v1/chat/completions",
        ),
        ("http://localhost:11434/api/generate", "/api/generate"),
        ("http://127.0.0.1:8000/chat/completions", "/v1/chat/completions"),
        ("/chat/completions", "/v1/chat/completions"),
        ("https://api.openai.com/v1/models/gpt-4o", "/v1/models/gpt-4o"),
        ("https://api.openai.com/v1/responses/resp_1/input_items", "/v1/responses/resp_1/input_items"),
        (
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/endpoints/openapi"
            "/chat/completions",
            "/v1/chat/completions",
        ),
        ("https://gateway.ai.cloudflare.com/v1/acct/gw/openai/embeddings", "/v1/embeddings"),
        ("https://generativelanguage.googleapis.com/v1beta/openai/chat/completions", "/v1/chat/completions"),
        ("https://openrouter.ai/api/v1/chat/completions", "/v1/chat/completions"),
        ("https://api.openai.com/v1/organization/projects", "/v1/organization/projects"),
        ("http://h/v1", "/v1"),
        ("http://h/health", "/health"),
    ],
)
def test_route(url: str, route: str) -> None:
    assert canonical.route(url) == route


def test_body_key_ignores_key_order_and_float_noise() -> None:
    a = canonical.body_key(True, {"model": "m", "temperature": 0.7, "top_p": 1.0})
    b = canonical.body_key(True, {"top_p": 1, "temperature": 0.70000001, "model": "m"})
    assert a == b
    assert a != canonical.body_key(True, {"model": "m", "temperature": 0.8, "top_p": 1})


def test_non_json_bodies_compare_as_exact_bytes() -> None:
    assert canonical.parse_json_body(b"--boundary\r\n") == (False, b"--boundary\r\n")
    assert canonical.body_key(False, b"a") != canonical.body_key(False, b"b")
    assert canonical.parse_json_body(b"") == (True, None)
