"""The pytest plugin (entry point ``pytest11``): opt-in vcr_ext defaults for pytest-recording.

Installed, it does nothing visible until a project opts in with one ini line::

    [pytest]
    vcr_ext = true

Then every ``@pytest.mark.vcr`` test records and replays through vcr_ext's persister,
matchers and indexed cassette; ``vcr_config`` fixtures and ``vcr`` mark arguments still
override any option, as pytest-recording documents. Whether or not a project opts in,
the plugin makes the ``route`` and ``canonical_body`` matcher names known, so a
``vcr_config`` built with :func:`vcr_ext.vcr_config` works too, and records the running
test's node id, which records carry as ``test_id``.
"""

from __future__ import annotations

from collections.abc import Generator
from contextvars import ContextVar
from typing import Any

import pytest

from . import run, usage
from .context import set_current_test_id

INI_OPTION = "vcr_ext"
_RUN_KEY = pytest.StashKey[tuple[Any, "str | None"]]()
_TALLIES_KEY = pytest.StashKey[list[dict[str, Any]]]()  # the xdist workers' usage tallies
_UNUSED_KEY = pytest.StashKey[list[usage.Recording]]()
_DESELECTED_KEY = pytest.StashKey[int]()
_WORKER_OUTPUT = "vcr_ext_usage"

# Whether the test whose ``vcr`` fixture is being set up asked for --record-mode=rewrite,
# from the command line, its ``vcr_config`` or a ``vcr`` mark.
_rewrite_requested: ContextVar[bool | None] = ContextVar("vcr_ext_rewrite_requested", default=None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI_OPTION,
        type="bool",
        default=False,
        help="vcr_ext: record and replay @pytest.mark.vcr tests in the LLM recording format.",
    )
    parser.addoption(
        "--vcr-ext-unused",
        choices=("off", "warn", "fail"),
        default="off",
        help="vcr_ext: report recordings of the cassettes opened that no test played "
        "(warn), or also fail the run (fail); kept for `vcr-ext prune`. Default: off.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--vcr-ext-unused", "off") != "off":
        usage.enable()
        config.stash[_TALLIES_KEY] = []
    # One recording run per pytest session, shared by its xdist workers (see vcr_ext.run):
    # what `once` and `rewrite` mean for a cassette several workers record.
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get(run.RUN_DIR_ENV):
        run.join_run(workerinput[run.RUN_DIR_ENV])
        return
    config.stash[_RUN_KEY] = run.start_run()


def pytest_unconfigure(config: pytest.Config) -> None:
    started = config.stash.get(_RUN_KEY, None)
    if started is not None:
        run.end_run(*started)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist's hook, called in the controller for each worker it starts."""
    started = node.config.stash.get(_RUN_KEY, None)
    if started is not None:
        node.workerinput[run.RUN_DIR_ENV] = str(started[0])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    # Set around setup, call and teardown: the cassette is saved in fixture teardown.
    previous = set_current_test_id(item.nodeid)
    try:
        yield
    finally:
        set_current_test_id(previous)


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, None, None]:
    # pytest-recording turns "rewrite" into "new_episodes" before its configure hook sees
    # the VCR, so the mode the test asked for is read here, where the fixture starts.
    if fixturedef.argname != "vcr" or not request.config.getini(INI_OPTION):
        yield
        return
    token = _rewrite_requested.set(_asks_rewrite(request))
    try:
        yield
    finally:
        _rewrite_requested.reset(token)


def _asks_rewrite(request: pytest.FixtureRequest) -> bool:
    """The record mode as pytest-recording merges it: marks over ``vcr_config`` over the option."""
    mode = request.config.getoption("--record-mode", None)
    config = request.getfixturevalue("vcr_config")
    mode = config.get("record_mode", mode) if isinstance(config, dict) else mode
    # Marks closest to the test come first in iter_markers and win.
    for mark in request.node.iter_markers(name="vcr"):
        if "record_mode" in mark.kwargs:
            mode = mark.kwargs["record_mode"]
            break
    return bool(mode == "rewrite")


@pytest.hookimpl(optionalhook=True)
def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """pytest-recording's hook, called with the ``vcr.VCR`` it built for a test."""
    # Imported here, not at plugin load: pytest-recording asks pytest to rewrite the
    # asserts of vcr.matchers, which only works if nothing imported vcr before it.
    from .config import VCR, register

    register(vcr)
    if not config.getini(INI_OPTION):
        return
    # pytest-recording implements rewrite by deleting "<name>.yaml" and recording in
    # new_episodes mode; a directory cassette needs the persister to do it.
    rewrite = _rewrite_requested.get()
    if rewrite is None:
        rewrite = config.getoption("--record-mode", None) == "rewrite"
    VCR.adopt(vcr, extra_paths=getattr(vcr.persister, "extra_paths", ()), rewrite=rewrite)


# -- recordings no test played (--vcr-ext-unused) -----------------------------------------


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items and usage.enabled():
        config = items[0].config
        config.stash[_DESELECTED_KEY] = config.stash.get(_DESELECTED_KEY, 0) + len(items)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist's hook, in the controller, as a worker ends: keep the worker's usage tally."""
    tallies = node.config.stash.get(_TALLIES_KEY, None)
    output = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT)
    if tallies is not None and output is not None:
        tallies.append(output)


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which sends workeroutput to the controller
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not usage.enabled():
        return
    if hasattr(config, "workeroutput"):
        config.workeroutput[_WORKER_OUTPUT] = usage.snapshot()
        return
    tally = usage.merge([usage.snapshot(), *config.stash.get(_TALLIES_KEY, [])])
    unused = usage.unused(tally)
    config.stash[_UNUSED_KEY] = unused
    if config.cache is not None:
        run_facts = {"failed": session.testsfailed, "deselected": config.stash.get(_DESELECTED_KEY, 0)}
        config.cache.set(usage.CACHE_KEY, {"run": run_facts, "cassettes": tally})
    if unused and config.getoption("--vcr-ext-unused") == "fail" and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    unused = config.stash.get(_UNUSED_KEY, None)
    if unused is None:
        return
    cassettes = len({r.cassette for r in unused})
    if not unused:
        terminalreporter.write_line("vcr_ext: every recording of the cassettes opened was played")
        return
    terminalreporter.section("vcr_ext: recordings no test played", sep="-", yellow=True)
    for recording in unused[:50]:
        terminalreporter.write_line(f"  {usage.describe(recording)}")
    if len(unused) > 50:
        terminalreporter.write_line(f"  ... and {len(unused) - 50} more")
    terminalreporter.write_line(
        f"{len(unused)} recording(s) in {cassettes} cassette(s) no test played; "
        "`vcr-ext prune` lists them, `vcr-ext prune --write` removes them"
    )
