"""vcr_ext: record and replay LLM API traffic with vcrpy, as clean per-chunk JSON recordings.

Public API:

- :func:`VCR` -- a ``vcr.VCR`` configured for LLM traffic (use it as vcrpy's);
- :func:`vcr_config` -- the same configuration as the dict pytest-recording's
  ``vcr_config`` fixture returns;
- :class:`Persister`, the ``"vcr_ext"`` serializer, the ``method``, ``route`` and ``canonical_body``
  matchers, for composing your own vcrpy setup;
- :class:`CassetteFormatError`, raised for a recording that cannot be read, naming the
  file, the record and the field.

With pytest, one line turns it on for every ``@pytest.mark.vcr`` test: ``vcr_ext = true``
in the ``[pytest]`` (or ``[tool:pytest]``) section of your ini file.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import CassetteFormatError, VcrExtError

if TYPE_CHECKING:
    from . import matchers, serializer
    from .config import VCR as _VCR
    from .persister import Persister

__version__ = "0.1.0"

__all__ = [
    "VCR",
    "CassetteFormatError",
    "Persister",
    "VcrExtError",
    "__version__",
    "matchers",
    "serializer",
    "vcr_config",
]


def VCR(**overrides: Any) -> _VCR:
    """A ``vcr.VCR`` that records OpenAI traffic in the recording format and replays it exactly.

    Defaults: a cassette is a directory of one-record JSON files (``layout="file"`` for
    one ``.json`` file); requests match on method, API route and canonical JSON body;
    request headers are never written and response headers only if a client reads them;
    compressed responses are stored decoded. Any ``vcr.VCR`` keyword argument overrides
    a default, plus vcr_ext's own: ``layout`` (``"auto"``, ``"directory"``, ``"file"``),
    ``keep_response_headers`` (more response header names to keep), ``ascii_only``
    (write ``\\uXXXX`` escapes as llama-stack's recorder does).

    >>> import vcr_ext
    >>> my_vcr = vcr_ext.VCR(record_mode="none")
    >>> # with my_vcr.use_cassette("cassettes/chat"): client.chat.completions.create(...)
    """
    from .config import VCR as vcr_class

    return vcr_class(**overrides)


def vcr_config(**overrides: Any) -> dict[str, Any]:
    """The keyword arguments for ``vcr.use_cassette`` that :func:`VCR` uses, for pytest-recording.

    Return it from a ``vcr_config`` fixture to tune one module or directory (the
    ``vcr_ext = true`` ini line already applies the defaults everywhere)::

        @pytest.fixture(scope="module")
        def vcr_config():
            return vcr_ext.vcr_config(layout="file")
    """
    from .config import defaults

    return defaults(**overrides)


# Loaded on first use: the pytest plugin imports this package, and importing vcrpy
# before pytest-recording registers vcr.matchers for assertion rewriting makes pytest warn.
_LAZY = {
    "Persister": ("persister", "Persister"),
    "matchers": ("matchers", None),
    "serializer": ("serializer", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'vcr_ext' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    return module if attribute is None else getattr(module, attribute)
