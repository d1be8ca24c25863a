"""Crash safety: a save killed with SIGKILL at any point leaves exactly the old cassette or the new one.

A child process saves a large cassette (2,000 interactions) and stops at a chosen point
of the save: it says so on its stdout and waits, and the test kills it there with
SIGKILL. The cassette is then compared, file by file and byte by byte, with the old
one and with the one a save that was not killed writes. No timing is involved: the
child is killed exactly where it said it was.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vcr_ext.persister import Persister

INTERACTIONS = 2000

CHILD = textwrap.dedent(
    """
    import json
    import os
    import sys
    from pathlib import Path

    from vcr.request import Request

    import vcr_ext.atomic as atomic
    from vcr_ext.persister import Persister

    cassette, layout, point, generation, rewrite, count = sys.argv[1:7]
    count = int(count)


    def stop_here():
        # Tell the test where we are, then wait to be killed.
        sys.stdout.write("stopped\\n")
        sys.stdout.flush()
        sys.stdin.read()
        raise SystemExit("not killed")


    def interaction(i):
        body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": f"q{i}"}]}).encode()
        request = Request("POST", "https://api.openai.com/v1/chat/completions", body, {})
        payload = {
            "id": f"chatcmpl-{i}", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"{generation} {i}"},
                         "finish_reason": "stop"}],
        }
        response = {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["application/json"]},
            "body": {"string": json.dumps(payload).encode()},
        }
        return request, response


    calls = {"n": 0}
    if point.startswith("file-"):
        # Directory layout: the Nth file written into the new directory.
        nth = int(point[len("file-"):])
        real_open = open

        def counting_open(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == nth:
                stop_here()
            return real_open(*args, **kwargs)

        atomic.open = counting_open
    elif point == "before-swap":
        # The exchange over an old directory, or the rename that makes a new one appear.
        def exchange(*args):
            stop_here()

        atomic.exchange = exchange
        atomic.os.rename = exchange
    elif point == "after-swap":
        def rmtree(path, *args, **kwargs):
            stop_here()

        atomic.shutil.rmtree = rmtree
    elif point == "half-written":
        # File layout: half the bytes of the new file are on disk.
        real_fdopen = os.fdopen

        class Half:
            def __init__(self, f):
                self.f = f
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                return self.f.__exit__(*exc)
            def write(self, data):
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                stop_here()

        atomic.os.fdopen = lambda *a, **k: Half(real_fdopen(*a, **k))
    elif point == "before-rename":
        def replace(src, dst):
            stop_here()

        atomic.os.replace = replace

    pairs = [interaction(i) for i in range(count)]
    persister = Persister(layout=layout, rewrite=rewrite == "1")
    persister.save_cassette(cassette, {"requests": [p[0] for p in pairs], "responses": [p[1] for p in pairs]})
    print("saved", flush=True)
    """
)


def _save(
    tmp_path: Path, cassette: Path, layout: str, point: str, generation: str, rewrite: bool
) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    args = [str(cassette), layout, point, generation, "1" if rewrite else "0", str(INTERACTIONS)]
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _snapshot(path: Path) -> dict[str, bytes]:
    """Every file of a cassette (a directory, recursively, or one file), by name, with its bytes."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _complete(tmp_path: Path, cassette: Path, layout: str, generation: str, rewrite: bool) -> None:
    child = _save(tmp_path, cassette, layout, "none", generation, rewrite)
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0 and out.strip() == "saved"


@pytest.fixture(scope="module")
def cassettes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """The old cassettes and what an uninterrupted save makes of them, per layout."""
    base = tmp_path_factory.mktemp("reference")
    made: dict[str, dict[str, bytes]] = {}
    for layout, name in (("directory", "cas"), ("file", "cas.json")):
        old = base / layout / "old" / name
        _complete(base, old, layout, "old", rewrite=False)
        made[f"{layout}-old"] = _snapshot(old)
        new = base / layout / "new" / name
        _complete(base, new, layout, "new", rewrite=False)
        made[f"{layout}-new"] = _snapshot(new)
        over = base / layout / "over" / name
        shutil.copytree(old.parent, over.parent, dirs_exist_ok=True)
        _complete(base, over, layout, "new", rewrite=True)
        made[f"{layout}-over"] = _snapshot(over)
    return made


DIRECTORY_POINTS = ["file-1", f"file-{INTERACTIONS // 2}", f"file-{INTERACTIONS}", "before-swap"]
FILE_POINTS = ["half-written", "before-rename"]
CASES = [
    *[(layout, point, over) for over in (False, True) for layout, point in (
        *(("directory", p) for p in DIRECTORY_POINTS), *(("file", p) for p in FILE_POINTS)
    )],
    # Only a re-record has an old directory to remove after the swap.
    ("directory", "after-swap", True),
]


@pytest.mark.parametrize(
    ("layout", "point", "over_existing"),
    CASES,
    ids=[f"{'re-record' if over else 'new'}-{layout}-{point}" for layout, point, over in CASES],
)
def test_a_killed_save_leaves_the_old_cassette_or_the_new_one(
    tmp_path: Path,
    cassettes: dict[str, dict[str, bytes]],
    layout: str,
    point: str,
    over_existing: bool,
) -> None:
    name = "cas" if layout == "directory" else "cas.json"
    cassette = tmp_path / "cassettes" / name
    cassette.parent.mkdir()
    old = cassettes[f"{layout}-old"] if over_existing else {}
    if over_existing:
        _complete(tmp_path, cassette, layout, "old", rewrite=False)
        assert _snapshot(cassette) == old
    new = cassettes[f"{layout}-over" if over_existing else f"{layout}-new"]
    assert new != old

    child = _save(tmp_path, cassette, layout, point, "new", rewrite=over_existing)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "stopped"  # the child is at `point`
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    child.stdin.close()  # type: ignore[union-attr]
    child.stdout.close()

    after = _snapshot(cassette)
    expected = new if point == "after-swap" else old
    assert after == expected, f"killed at {point}: the cassette is neither the old one nor the new one"

    # What the killed save left beside the cassette is not read by a load...
    if after:
        _, responses = Persister(layout=layout).load_cassette(cassette)
        assert len(responses) == INTERACTIONS
    # ...and the next save removes it.
    _complete(tmp_path, cassette, layout, "new", rewrite=over_existing)
    assert _snapshot(cassette) == new
    assert sorted(os.listdir(cassette.parent)) == [name]


def test_a_crashed_save_s_leftovers_are_ignored_by_load(tmp_path: Path) -> None:
    cassette = tmp_path / "cas"
    _complete(tmp_path, cassette, "directory", "old", rewrite=False)
    # What a save killed while building its new directory leaves: a partial sibling copy.
    partial = tmp_path / ".cas.vcr-ext-new-abc123"
    partial.mkdir()
    (partial / "half.json").write_text('{"test_id": ')
    # Another cassette's temporary file, whose name starts like this one's: not ours to remove.
    (tmp_path / ".cas.json.x1y2.tmp").write_text("[")
    _, responses = Persister().load_cassette(cassette)
    assert len(responses) == INTERACTIONS
    assert {json.loads(r["body"]["string"])["choices"][0]["message"]["content"] for r in responses} == {
        f"old {i}" for i in range(INTERACTIONS)
    }
    _complete(tmp_path, cassette, "directory", "new", rewrite=True)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".cas")) == [".cas.json.x1y2.tmp"]
