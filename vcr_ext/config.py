"""Configured vcrpy objects: the ``VCR`` class, the ``vcr_config`` dict, adopting pytest-recording's VCR."""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Iterable
from typing import Any

import vcr
from vcr.cassette import CassetteContextDecorator
from vcr.request import Request

from . import formats, scrub, serializer
from .cassette import IndexedCassette
from .interactions import parsed_body
from .matchers import DEFAULT_MATCH_ON, MATCHERS
from .persister import Layout, Persister
from .secrets import SecretScanner
from .sse import json_bytes

SERIALIZER_NAME = "vcr_ext"

# Options that are ours, not vcrpy's.
_OWN_OPTIONS = ("layout", "keep_response_headers", "ascii_only", "redact", "allow_secrets", "compat")


# vcrpy patcher group -> the module it patches. vcrpy tries every group for every
# cassette, and a failed import is not cached by Python: skipping the groups whose
# library is not installed saves a sys.path search per group per test.
_PATCHER_MODULES = {
    "requests": "requests",
    "boto3": "botocore",
    "urllib3": "urllib3",
    "httplib2": "httplib2",
    "tornado": "tornado",
    "aiohttp": "aiohttp",
    "httpx": "httpx",
    "httpx2": "httpx2",
}


@functools.cache
def absent_patchers() -> tuple[str, ...]:
    """vcrpy patcher groups whose library is not installed (nothing to patch)."""
    return tuple(
        name for name, module in _PATCHER_MODULES.items() if importlib.util.find_spec(module) is None
    )


def _json_suffix(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    return text if text.endswith(".json") else text + ".json"


def persister_from(options: dict[str, Any]) -> Persister:
    """A :class:`Persister` from our own options (see :func:`vcr_ext.VCR`)."""
    keep: Iterable[str] = options.get("keep_response_headers", ())
    layout: Layout = options.get("layout", "auto")
    return Persister(
        layout=layout,
        keep_response_headers=scrub.KEEP_RESPONSE_HEADERS | {h.lower() for h in keep},
        ascii_only=bool(options.get("ascii_only", False)),
        save_checks=(SecretScanner(allow=tuple(options.get("allow_secrets", ()))),),
        redactions=scrub.Redactions.from_rules(options.get("redact", ())),
        compat=_compat(options.get("compat")),
    )


def _compat(value: Any) -> formats.Variant | None:
    if value is None:
        return None
    if value not in formats.VARIANTS:
        raise ValueError(f"compat={value!r}: expected one of {', '.join(formats.VARIANTS)}")
    variant: formats.Variant = value
    return variant


def request_redactor(redactions: scrub.Redactions) -> Callable[[Request], Request]:
    """A vcrpy ``before_record_request`` hook applying the redaction rules to request bodies and URLs.

    vcrpy runs it on recorded and on incoming requests alike, so a redacted recording
    still matches the live request it came from.
    """

    def redact(request: Request) -> Request:
        if redactions.patterns:
            for pattern in redactions.patterns:
                request.uri = pattern.sub(scrub.REDACTED, request.uri)
        is_json, value = parsed_body(request)
        if is_json and value is not None:
            redacted = redactions.request_body(value)
            if redacted != value:
                request.body = json_bytes(redacted)
        return request

    return redact


def defaults(**overrides: Any) -> dict[str, Any]:
    """vcrpy keyword arguments with vcr_ext's defaults, ``overrides`` applied on top."""
    own = {k: overrides.pop(k) for k in _OWN_OPTIONS if k in overrides}
    path_transformer: Callable[[str], str] | None = _json_suffix if own.get("layout") == "file" else None
    persister = persister_from(own)
    if persister.redactions:
        user_hooks = overrides.pop("before_record_request", None)
        if user_hooks is None:
            user_hooks = ()
        elif callable(user_hooks):
            user_hooks = (user_hooks,)
        overrides["before_record_request"] = (request_redactor(persister.redactions), *user_hooks)
    config: dict[str, Any] = {
        "persister": persister,
        "match_on": DEFAULT_MATCH_ON,
        # The persister decodes a compressed body itself when it writes the record;
        # vcrpy's filter would also run, for nothing, on every interaction loaded.
        "decode_compressed_response": False,
        "path_transformer": path_transformer,
        "skip_patchers": absent_patchers(),
    }
    config.update(overrides)
    return config


def register(instance: vcr.VCR) -> None:
    """Make vcr_ext's matcher and serializer names known to a vcrpy ``VCR``."""
    for name, matcher in MATCHERS.items():
        instance.register_matcher(name, matcher)
    instance.register_serializer(SERIALIZER_NAME, serializer)


def _unchanged(request: Request) -> Request:
    return request


class VCR(vcr.VCR):  # type: ignore[misc]
    """A ``vcr.VCR`` configured for OpenAI traffic; see :func:`vcr_ext.VCR`."""

    vcr_ext_extra_paths: tuple[str, ...] = ()
    vcr_ext_rewrite: bool = False

    def __init__(self, **overrides: Any) -> None:
        config = defaults(**overrides)
        persister = config.pop("persister")
        super().__init__(**config)
        register(self)
        self.register_persister(persister)

    @classmethod
    def adopt(cls, instance: vcr.VCR, *, extra_paths: Iterable[str] = (), rewrite: bool = False) -> VCR:
        """Turn an existing ``vcr.VCR`` (the one pytest-recording builds) into this class, with our defaults.

        Options the test passes (``vcr_config``, the ``vcr`` mark) still override these,
        as they override any ``vcr.VCR`` attribute.
        """
        instance.__class__ = cls
        register(instance)
        config = defaults()
        instance.register_persister(config["persister"])
        instance.match_on = config["match_on"]
        instance.decode_compressed_response = config["decode_compressed_response"]
        instance.path_transformer = config["path_transformer"]
        instance.skip_patchers = config["skip_patchers"]
        adopted: VCR = instance
        adopted.vcr_ext_extra_paths = tuple(extra_paths)
        adopted.vcr_ext_rewrite = rewrite
        return adopted

    def get_merged_config(self, **kwargs: Any) -> dict[str, Any]:
        merged: dict[str, Any] = super().get_merged_config(**kwargs)
        persister = merged.get("persister")
        if isinstance(persister, Persister) and (self.vcr_ext_extra_paths or self.vcr_ext_rewrite):
            merged["persister"] = persister.with_options(
                extra_paths=tuple(persister.extra_paths) + self.vcr_ext_extra_paths,
                rewrite=persister.rewrite or self.vcr_ext_rewrite,
            )
        return merged

    def _build_before_record_request(self, options: dict[str, Any]) -> Callable[[Request], Request | None]:
        # vcrpy deep-copies every request before running its filters, three times per
        # replayed request; with no filter to protect the live request from, the copy
        # is pure cost.
        filters = (
            "filter_headers",
            "filter_query_parameters",
            "filter_post_data_parameters",
            "before_record_request",
            "before_record",
            "ignore_hosts",
            "ignore_localhost",
        )
        if not any(options.get(name, getattr(self, name, None)) for name in filters):
            return _unchanged
        built: Callable[[Request], Request | None] = super()._build_before_record_request(options)
        return built

    def _use_cassette(self, with_current_defaults: bool = False, **kwargs: Any) -> CassetteContextDecorator:
        # vcrpy names its Cassette class here and nowhere else configurable.
        if with_current_defaults:
            return IndexedCassette.use(**self.get_merged_config(**kwargs))
        return IndexedCassette.use_arg_getter(functools.partial(self.get_merged_config, **kwargs))
