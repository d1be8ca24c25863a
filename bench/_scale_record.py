"""Child process of :mod:`bench.scale`: one tool records the mixed cassettes of the given sizes.

Usage: ``python -m bench._scale_record GROUP ROOT REQUESTS SIZE...``; GROUP is ``vcr_ext``,
``cassetter`` or ``vcrpy`` (both vcrpy rows); REQUESTS is the pickle of
:func:`bench.scale_traffic.build_requests`. Prints one JSON line: per tool and size, the
summary of every response as recorded, and the seconds spent.

Each job runs in its own process with its own demo server, so that jobs record in
parallel (vcrpy and cassetter patch the HTTP libraries process-wide). bench.scale runs one
job per group for the largest size and one for the smaller sizes (see its _record_jobs).

vcr_ext records each size in one cassette, through ``vcr_ext.VCR(record_mode="once")``.
vcrpy and cassetter cannot: while recording, both compare every new request with every
interaction already recorded (vcrpy's ``Cassette.can_play_response_for`` runs the body
matcher over all of them, cassetter's ``take_match`` scans them in Rust), which makes
recording quadratic: 55 s (vcrpy) and 19 s (cassetter) for 1,000 requests, over an hour
and ~20 minutes for 10,000. So they record requests 0 .. max(SIZE) through their own HTTP
interception in cassettes of ``BATCH`` requests, and each size's cassette (requests
0 .. N-1) is then written by the tool's own code from those interactions:

- vcrpy: its ``FilesystemPersister.save_cassette`` with each serializer module, given the
  interactions vcrpy would have saved (a persister that keeps them instead of writing
  batches). Both vcrpy rows share the one recording; they differ only in the serializer.
- cassetter: a ``Cassetter.cassette(path)`` fed every interaction through its public
  ``Cassette.record()`` (what the interceptor calls after the response, which scrubs,
  restates content-length and stamps ``recorded_at``), then ``save()``, which writes
  cassetter's canonical order.

Every run checks the construction: each built cassette of up to ``CHECKED_UP_TO`` requests
must hold the same interactions, in the same order, as one recorded in one go (request
method, URI and body; response status and body; headers such as ``date`` differ per
response and are not compared).
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
from cassetter.compare import body_to_bytes
from vcr.persisters.filesystem import CassetteNotFoundError, FilesystemPersister
from vcr.request import Request

from vcr_ext.demo.server import FakeOpenAIServer

from . import scale_traffic
from .scale_traffic import Summary, WireRequest, cassette_for
from .tools import RECORD, Tool, all_tools, cassetter_recorder, vcrpy_recorder

# Requests per recording cassette for vcrpy and cassetter: each request is compared with
# at most this many. Small enough that recording is not slowed down by it.
BATCH = {"vcrpy": 20, "cassetter": 50}
VCRPY_ROWS = ("vcrpy-yaml", "vcrpy-json")
# Sizes up to this are compared with a recording in one go (10 is a part of a batch, 100 several).
CHECKED_UP_TO = 100
Send = Callable[[int], Summary]


def _tool(name: str) -> Tool:
    return next(t for t in all_tools() if t.name == name)


class _Kept:
    """A vcrpy persister that loads nothing and keeps every saved interaction, in order."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.responses: list[dict[str, Any]] = []

    def load_cassette(self, cassette_path: str, serializer: Any) -> tuple[list[Request], list[Any]]:
        raise CassetteNotFoundError()

    def save_cassette(self, cassette_path: str, cassette_dict: dict[str, Any], serializer: Any) -> None:
        self.requests += cassette_dict["requests"]
        self.responses += cassette_dict["responses"]


def _batches(largest: int, size: int) -> list[range]:
    return [range(first, min(first + size, largest)) for first in range(0, largest, size)]


def record_vcrpy(
    root: Path, requests: list[WireRequest], sizes: list[int], send: Send
) -> tuple[list[Summary], dict[str, float]]:
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    kept = _Kept()
    recorder = vcrpy_recorder(RECORD, "json")
    recorder.register_persister(kept)
    summaries: list[Summary] = []
    for batch in _batches(max(sizes), BATCH["vcrpy"]):
        with recorder.use_cassette(f"batch-{batch.start}"):
            summaries += [send(i) for i in batch]
    seconds["record in batches"] = time.perf_counter() - start
    for name in VCRPY_ROWS:
        start = time.perf_counter()
        # The serializer module vcrpy itself writes with, for this row's serializer name.
        serializer = recorder.serializers[name.removeprefix("vcrpy-")]
        for size in sizes:
            cassette = {"requests": kept.requests[:size], "responses": kept.responses[:size]}
            FilesystemPersister.save_cassette(cassette_for(_tool(name), root, size), cassette, serializer)
        seconds[f"write {name}"] = time.perf_counter() - start
    return summaries, seconds


def _vcrpy_content(path: Path, serializer: Any) -> list[tuple[Any, ...]]:
    requests, responses = FilesystemPersister.load_cassette(path, serializer)
    return [
        (q.method, q.uri, q.body, r["status"]["code"], r["body"]["string"])
        for q, r in zip(requests, responses, strict=True)
    ]


def check_vcrpy(root: Path, size: int, send: Send) -> bool:
    """The built vcrpy-json cassette of ``size`` holds what vcrpy records in one go."""
    tool = _tool("vcrpy-json")
    one_go = tool.cassette_path(root / "scale-check", f"one_go_{size}")
    with tool.open(one_go, RECORD):
        for i in range(size):
            send(i)
    serializer = vcrpy_recorder(RECORD, "json").serializers["json"]
    return _vcrpy_content(one_go, serializer) == _vcrpy_content(cassette_for(tool, root, size), serializer)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def record_cassetter(
    root: Path, requests: list[WireRequest], sizes: list[int], send: Send
) -> tuple[list[Summary], dict[str, float]]:
    tool = _tool("cassetter")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    batch_dir = root / "scale-batches" / tool.name
    summaries: list[Summary] = []
    batch_files = []
    for batch in _batches(max(sizes), BATCH["cassetter"]):
        batch_files.append(batch_dir / f"batch-{batch.start}.yaml")
        with tool.open(batch_files[-1], RECORD):
            summaries += [send(i) for i in batch]
    seconds["record in batches"] = time.perf_counter() - start
    start = time.perf_counter()
    recorder = cassetter_recorder(RECORD)
    interactions = []
    for file in batch_files:
        recorded = recorder.cassette(file)
        recorded.load()
        interactions += recorded.interactions
    # cassetter saves in its canonical order, not in request order: put every interaction
    # back at its request's index (by JSON body), so that the cassette of N holds 0 .. N-1.
    index = {_canonical(json.loads(body)): i for i, (_, _, _, body) in enumerate(requests)}
    interactions.sort(key=lambda interaction: index[_canonical(interaction.request.body.content)])
    for size in sizes:
        build_cassetter(recorder, interactions[:size], cassette_for(tool, root, size))
    shutil.rmtree(batch_dir)
    seconds["write"] = time.perf_counter() - start
    return summaries, seconds


def build_cassetter(recorder: Any, interactions: list[Any], path: Path) -> None:
    """A cassetter cassette of these interactions, written by cassetter's own recording code."""
    cassette = recorder.cassette(path)
    cassette.load()  # no file yet: an empty cassette that records
    for interaction in interactions:
        request, response = interaction.request, interaction.response
        cassette.record(
            method=request.method,
            uri=request.uri,
            request_headers=request.headers,
            request_body=body_to_bytes(request.body),
            status=response.status,
            response_headers=response.headers,
            response_body=body_to_bytes(response.body),
        )
    cassette.save()


def _cassetter_content(path: Path) -> list[tuple[Any, ...]]:
    cassette = cassetter_recorder(RECORD).cassette(path)
    cassette.load()
    return [
        (i.request.method, i.request.uri, i.request.body, i.response.status, i.response.body)
        for i in cassette.interactions
    ]


def check_cassetter(root: Path, size: int, send: Send) -> bool:
    """The built cassetter cassette of ``size`` holds what cassetter records in one go, in its order."""
    tool = _tool("cassetter")
    one_go = tool.cassette_path(root / "scale-check", f"one_go_{size}")
    with tool.open(one_go, RECORD):
        for i in range(size):
            send(i)
    return _cassetter_content(one_go) == _cassetter_content(cassette_for(tool, root, size))


def record_directly(
    tool: Tool, root: Path, sizes: list[int], send: Send
) -> tuple[dict[str, list[Summary]], dict[str, float]]:
    per_size: dict[str, list[Summary]] = {}
    seconds: dict[str, float] = {}
    for size in sizes:
        start = time.perf_counter()
        with tool.open(cassette_for(tool, root, size), RECORD):
            per_size[str(size)] = [send(i) for i in range(size)]
        seconds[f"record {size:,}"] = time.perf_counter() - start
    return per_size, seconds


def main(argv: list[str]) -> int:
    group, root, requests_file, sizes = argv[0], Path(argv[1]), Path(argv[2]), [int(a) for a in argv[3:]]
    with requests_file.open("rb") as f:
        requests: list[WireRequest] = pickle.load(f)
    out: dict[str, Any] = {"summaries": {}}
    with FakeOpenAIServer() as server, httpx2.Client(timeout=30) as http:

        def send(i: int) -> Summary:
            return scale_traffic.wire_summary(i, scale_traffic.send(http, server.url, requests[i]))

        if group in ("vcrpy", "cassetter"):
            record = record_vcrpy if group == "vcrpy" else record_cassetter
            summaries, out["seconds"] = record(root, requests, sizes, send)
            for name in VCRPY_ROWS if group == "vcrpy" else (group,):
                out["summaries"][name] = {str(size): summaries[:size] for size in sizes}
            check = check_vcrpy if group == "vcrpy" else check_cassetter
            out["built_equals_one_go"] = {
                str(size): check(root, size, send) for size in sizes if size <= CHECKED_UP_TO
            }
        else:
            out["summaries"][group], out["seconds"] = record_directly(_tool(group), root, sizes, send)
        out["served"] = len(server.requests)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
