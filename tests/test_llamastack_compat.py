"""compat="llama-stack" writes what llama-stack's recorder wrote, byte for byte.

For each corpus recording whose file the wire can reproduce, the recorded response is
served to the real client by an in-process transport (no network), the client call the
record describes is made through vcr_ext in compat mode, and the file written must equal
the corpus file byte for byte, under the same name.

llama-stack dumped the SDK's objects with the SDK it had (openai 2.5.0 for this corpus);
another SDK version dumps other fields, so a recording is compared only where the
installed SDK dumps its objects exactly as they are in the file (``tox -e
llama-stack-compat`` pins openai 2.5.0), and is skipped, saying which field differs,
elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import openai
import pytest
from conftest import corpus_path

import vcr_ext
from vcr_ext import canonical, conformance, context, record, sdk_types
from vcr_ext.formats import llamastack
from vcr_ext.formats.llamastack import apply_id_mapping, to_ours
from vcr_ext.interactions import to_interaction

ROOT = corpus_path() / conformance.CORPUS_NAME


def _dumped_differently(rec: dict[str, Any]) -> str | None:
    """Why the installed SDK would not dump this file's objects as they are, or ``None``."""
    body = rec["response"]["body"]
    for item in body if isinstance(body, list) else [body]:
        u = sdk_types.unwrap(item)
        if u.type_name is None or u.type_name.startswith("vcr_ext."):
            continue
        redumped = llamastack.redump(u.type_name, u.payload)
        if redumped != u.payload or list(redumped) != list(u.payload):
            where = conformance.first_difference(u.payload, redumped, path=u.type_name.rsplit(".", 1)[1])
            return f"recorded with another SDK version than the installed one ({where})"
    return None


def _unreproducible(path: Path, rec: dict[str, Any]) -> str | None:
    """Why the wire cannot carry what this file holds, or ``None`` if it can."""
    req = rec["request"]
    if isinstance(req.get("body"), dict) and "extra_body" in req["body"]:
        return "the body holds an extra_body argument, which the SDK does not send as such"
    if rec.get("id_normalization_mapping"):
        return "the file maps real ids to normalized ones, which no HTTP exchange carries"
    route = canonical.route(req["endpoint"])
    if route != req["endpoint"]:
        return f"its endpoint {req['endpoint']!r} is not an API route"
    test_id = rec.get("test_id")
    rhash = record.request_hash(req["method"], req["url"], req["body"], test_id)
    if path.stem != rhash and not path.name.startswith(f"models-{rhash}-"):
        return "its name is not the request hash (renamed by other tooling)"
    return None


def _cases() -> Iterator[Any]:
    if not ROOT.is_dir():
        yield pytest.param(
            None, marks=pytest.mark.skip(reason=f"corpus not found at {ROOT}: set VCR_EXT_CORPUS")
        )
        return
    for case in conformance.discover(ROOT):
        if case.skip_reason is None:
            yield pytest.param(case, id=str(case.path.relative_to(ROOT)))


def _serving_transport(sdk: str, rec: dict[str, Any]) -> Any:
    """A transport of the client's own HTTP library answering with the recorded response."""
    _, response = to_interaction(to_ours(apply_id_mapping(rec)))
    if sdk == "ollama" or int(openai.__version__.split(".")[0]) < 3:
        import httpx as http
    else:
        import httpx2 as http  # type: ignore[no-redef]

    def handle(request: Any) -> Any:
        headers = [(k, v) for k, values in response["headers"].items() for v in values]
        return http.Response(response["status"]["code"], headers=headers, content=response["body"]["string"])

    return http.MockTransport(handle)


def _client(case: conformance.Case, rec: dict[str, Any]) -> Any:
    url = rec["request"]["url"]
    parts = urlsplit(url)
    transport = _serving_transport(case.sdk, rec)
    if case.sdk == "ollama":
        import ollama

        return ollama.Client(host=urlunsplit((parts.scheme, parts.netloc, "", "", "")), transport=transport)
    route = canonical.route(rec["request"]["endpoint"])
    base = url[: -len(route)] if url.endswith(route) else url
    return openai.OpenAI(
        base_url=base,
        api_key="sk-compat",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(transport=transport),
    )


def _variant(rec: dict[str, Any]) -> str:
    if "test_id" not in rec:
        return "llama-stack-legacy"
    return "llama-stack-mapping" if "id_normalization_mapping" in rec else "llama-stack"


def _rerecord(case: conformance.Case, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    rec = json.loads(case.path.read_text())
    reason = _unreproducible(case.path, rec)
    if reason:
        pytest.skip(reason)
    call = conformance.build_call(case, apply_id_mapping(rec))
    client = _client(case, rec)
    previous = context.set_current_test_id(rec.get("test_id"))
    try:
        with vcr_ext.VCR(record_mode="all", compat=_variant(rec)).use_cassette(str(tmp_path / "out")):
            result = conformance.resolve(client, call.method)(**call.kwargs)
            if call.stream:
                list(result)
    finally:
        context.set_current_test_id(previous)
    return rec, tmp_path / "out"


@pytest.mark.parametrize("case", list(_cases()))
def test_compat_mode_writes_the_corpus_file(case: conformance.Case, tmp_path: Path) -> None:
    reason = _dumped_differently(json.loads(case.path.read_text()))
    if reason:
        pytest.skip(reason)
    _, out = _rerecord(case, tmp_path)
    written = sorted(out.iterdir())
    assert [p.name for p in written] == [case.path.name]
    assert written[0].read_bytes() == case.path.read_bytes()


def test_compat_mode_writes_the_format_with_any_sdk(tmp_path: Path) -> None:
    """Whatever the SDK version, compat output has llama-stack's names, keys, URL and normalization."""
    if not ROOT.is_dir():
        pytest.skip(f"corpus not found at {ROOT}")
    seed = next(p for p in sorted((ROOT.parent.parent / "seed").glob("*.json")))
    case = next(c for c in conformance.discover(ROOT) if c.path.name == seed.name)
    rec, out = _rerecord(case, tmp_path)
    (written,) = out.iterdir()
    assert written.name == seed.name
    got = json.loads(written.read_text())
    assert list(got) == list(rec) and got["request"] == rec["request"]
    assert [c["__data__"]["id"] for c in got["response"]["body"]] == [
        c["__data__"]["id"] for c in rec["response"]["body"]
    ]
    assert written.read_text().isascii()
