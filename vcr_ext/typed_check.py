"""Whether a typed payload (``__data__``) can be the SDK class its ``__type__`` names, checked at load.

A client builds SDK objects from replayed bytes without validating them (openai's
``construct_type``), so ``"choices": "oops"`` in a recording does not fail where it is:
the test dies later in an ``AttributeError`` far from the file. This module catches
such values when the cassette is opened.

The rule is structural and deliberately lenient: a value fails only if its JSON kind
(object, array, string, number, boolean) is one the field's annotation can never hold.
Unknown fields are fine (SDK models allow extras), so are missing fields, and so is
``null`` anywhere below the top: real providers send ``null`` for required fields
(``finish_reason`` of ``Completion`` chunks, ``created`` of Gemini ``Model`` items) and
the SDK accepts it, and llama-stack's re-dumped objects write explicit nulls. Values
are not validated (``object: ""`` from Azure stays fine); ``model_validate`` would reject
real recordings and costs far more.

Speed: each SDK class is turned once into a pydantic-core schema of JSON kinds (cached),
so checking a payload is one call into pydantic-core's Rust validator, not a Python walk
(about 1.4 us for a chat chunk, less than encoding it for the wire).

Only the SDKs vcr_ext itself types payloads for are looked at (:data:`SDK_PACKAGES`),
and only when installed: a file never makes this module import anything else, and a
``__type__`` naming a class that is not there (an older SDK, another tool's type) is
left unchecked. The first cassette holding an SDK's type imports that SDK's class, once
per process; a test replaying it has nearly always imported the SDK already.
"""

from __future__ import annotations

import collections.abc
import datetime
import enum
import functools
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic_core import CoreSchema, SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from . import sdk_types
from .providers import bedrock, google

# Top-level packages whose classes are checked: the SDKs whose class names vcr_ext writes.
SDK_PACKAGES = frozenset({"openai", "ollama", "anthropic", "cohere", "botocore", "google"})

# Hooks that keep a model's JSON an object of its fields (by alias) both ways, although
# pydantic sees a ``before`` validator and a ``plain`` serializer: every model of the
# Fern-generated cohere SDK inherits these two from its ``UniversalBaseModel``; google-genai's
# models all inherit one validator that only logs (see the provider module).
_KIND_PRESERVING_HOOKS = (
    frozenset(
        {
            "cohere.core.pydantic_utilities.UniversalBaseModel._coerce_field_names_to_aliases",
            "cohere.core.pydantic_utilities.UniversalBaseModel.serialize_model",
        }
    )
    | google.PASS_THROUGH_VALIDATORS
)

# Values the SDK accepts besides what the annotation says, keyed by (class, JSON key).
# The openai SDK asks for base64 embeddings by default and decodes the string itself,
# so on the wire (and in recordings made from it) ``embedding`` is a string.
_ALSO_ACCEPTED: dict[tuple[str, str], CoreSchema] = {
    ("openai.types.embedding.Embedding", "embedding"): cs.str_schema(strict=True),
}

# Labels of union members in pydantic-core error locations start with this, so they
# can be told apart from field names and dropped from the dotted path.
_LABEL = "\x00"

_STRING = cs.str_schema(strict=True)
_NUMBER = cs.float_schema(strict=True)  # strict float takes JSON integers too, not booleans
_BOOLEAN = cs.bool_schema(strict=True)
_NULL = cs.none_schema()

_KIND_OF_ERROR = {
    "string_type": "a string",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "an array",
    "dict_type": "an object",
    "none_required": "null",
}
_SEQUENCES = frozenset(
    {
        list,
        tuple,
        set,
        frozenset,
        collections.abc.Sequence,
        collections.abc.MutableSequence,
        collections.abc.Set,
        collections.abc.MutableSet,
        collections.abc.Iterable,
        collections.abc.Collection,
    }
)
_MAPPINGS = frozenset({dict, collections.abc.Mapping, collections.abc.MutableMapping})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPE_ALIAS = getattr(typing, "TypeAliasType", None)  # Python 3.12+


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Where in a payload a value has a kind its class never holds, and what was expected."""

    path: str
    """Dotted path below ``__data__`` (``".choices"``, ``".choices[0].delta"``; ``""`` for the payload)."""
    problem: str


def check(type_name: str, data: Any) -> Mismatch | None:
    """The first value of ``data`` that ``type_name`` can never hold, or ``None`` (also when unchecked)."""
    fits = fits_test(type_name)
    if fits is None or fits(data):
        return None
    return mismatch(type_name, data)


def fits_test(type_name: str) -> Callable[[Any], bool] | None:
    """A test of whether a payload fits ``type_name``, ``None`` if its payloads are not checked.

    For a caller checking many payloads of one type (the chunks of a stream): it looks
    the type up once, and asks pydantic-core's ``isinstance_python``, which builds no
    error list (a third cheaper than validating); :func:`mismatch` then says why one failed.
    """
    validator = _validator(type_name)
    return None if validator is None else validator.isinstance_python


def all_fit_test(type_name: str) -> Callable[[list[Any]], bool] | None:
    """:func:`fits_test` for a whole list of payloads at once (one call into pydantic-core per stream)."""
    validator = _list_validator(type_name)
    return None if validator is None else validator.isinstance_python


def mismatch(type_name: str, data: Any) -> Mismatch | None:
    """Where ``data`` cannot be ``type_name`` and why (``None`` if it can, or is not checked)."""
    validator = _validator(type_name)
    try:
        if validator is not None:
            validator.validate_python(data)
    except ValidationError as err:
        return _mismatch(type_name, data, err)
    return None


def is_checked(type_name: str) -> bool:
    """Whether payloads of ``type_name`` are checked (its SDK is installed and has the class)."""
    return _validator(type_name) is not None


@functools.lru_cache(maxsize=1024)
def _validator(type_name: str) -> SchemaValidator | None:
    if type_name.partition(".")[0] not in SDK_PACKAGES:
        return None
    if type_name.startswith(bedrock.TYPE_PREFIX):  # a shape of botocore's service model, not a class
        validator: SchemaValidator | None = bedrock.validator(type_name)
        return validator
    try:
        cls = sdk_types.sdk_class(type_name)
    except (ImportError, AttributeError):
        return None  # SDK not installed, or a class this version of it does not have
    if not _is_plain_model(cls):
        return None
    defs: dict[str, CoreSchema] = {}
    root = _model(cls, defs)
    return SchemaValidator(cs.definitions_schema(root, list(defs.values())))


@functools.lru_cache(maxsize=1024)
def _list_validator(type_name: str) -> SchemaValidator | None:
    if _validator(type_name) is None:
        return None
    if type_name.startswith(bedrock.TYPE_PREFIX):
        many: SchemaValidator | None = bedrock.validator(type_name, many=True)
        return many
    cls = sdk_types.sdk_class(type_name)
    defs: dict[str, CoreSchema] = {}
    root = _model(cls, defs)
    return SchemaValidator(cs.definitions_schema(cs.list_schema(root), list(defs.values())))


def _is_plain_model(cls: Any) -> bool:
    """A pydantic model whose JSON is an object of its fields both ways.

    A hook that reads other input (a ``before``/``wrap`` validator, a custom core schema)
    or writes other output (a model serializer: ollama's ``Image`` dumps to a base64
    string, which is what a recorder that re-dumps objects writes) makes any kind fit.
    """
    if not (isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)):
        return False
    if issubclass(cls, pydantic.RootModel) or "__get_pydantic_core_schema__" in vars(cls):
        return False
    decorators = cls.__pydantic_decorators__
    serializers = decorators.model_serializers.values()
    if any(s.info.mode in ("plain", "wrap") and not _kind_preserving(s.func) for s in serializers):
        return False
    validators = decorators.model_validators.values()
    return not any(v.info.mode in ("before", "wrap") and not _kind_preserving(v.func) for v in validators)


def _kind_preserving(func: Any) -> bool:
    func = getattr(func, "__func__", func)  # a classmethod's function
    return f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '')}" in _KIND_PRESERVING_HOOKS


def _model(cls: type[pydantic.BaseModel], defs: dict[str, CoreSchema]) -> CoreSchema:
    """A reference to the object schema of ``cls`` in ``defs``, building it on first use."""
    ref = sdk_types.dotted_name(cls)
    if ref not in defs:
        # Placed before the fields are converted, so a model that contains itself ends.
        defs[ref] = cs.dict_schema(strict=True, ref=ref)
        # Fields whose validator reads, or whose serializer writes, other kinds than the annotation's.
        decorators = cls.__pydantic_decorators__
        loose = {
            f for v in decorators.field_validators.values() if v.info.mode != "after" for f in v.info.fields
        }
        loose |= {
            f for s in decorators.field_serializers.values() for f in s.info.fields
        }  # all plain or wrap
        fields: dict[str, cs.TypedDictField] = {}
        for name, info in cls.model_fields.items():
            key = info.validation_alias if isinstance(info.validation_alias, str) else info.alias or name
            schema = None if name in loose else _schema(info.annotation, defs)
            also = _ALSO_ACCEPTED.get((ref, key))
            if schema is not None and also is not None:
                schema = _union([schema, also])
            if schema is not None:
                fields[key] = cs.typed_dict_field(cs.nullable_schema(schema), required=False)
        if fields:
            defs[ref] = cs.typed_dict_schema(fields, extra_behavior="ignore", total=False, ref=ref)
    return cs.definition_reference_schema(ref)


def _schema(annotation: Any, defs: dict[str, CoreSchema]) -> CoreSchema | None:
    """The JSON kinds an annotation admits as a schema; ``None`` when it admits anything."""
    if annotation is None or annotation is type(None):
        return _NULL
    if _TYPE_ALIAS is not None and isinstance(annotation, _TYPE_ALIAS):
        return _schema(annotation.__value__, defs)
    supertype = getattr(annotation, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return _schema(supertype, defs)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _schema(args[0], defs)
    if origin is typing.Literal:
        return _union([_scalar(type(v.value if isinstance(v, enum.Enum) else v)) for v in args])
    if origin is typing.Union or origin is types.UnionType:
        return _union([_schema(a, defs) for a in args])
    if origin in _SEQUENCES:
        items = [a for a in args if a is not Ellipsis]
        item = _union([_schema(a, defs) for a in items]) if items else None
        return cs.list_schema(cs.nullable_schema(item) if item is not None else None, strict=True)
    if origin in _MAPPINGS:
        value = _schema(args[1], defs) if len(args) == 2 else None
        return cs.dict_schema(None, cs.nullable_schema(value) if value is not None else None, strict=True)
    if origin is not None or not isinstance(annotation, type):
        return None  # Any, a TypeVar, a forward reference, a generic we do not know: anything
    if issubclass(annotation, pydantic.BaseModel):
        return _model(annotation, defs) if _is_plain_model(annotation) else None
    if typing.is_typeddict(annotation):
        hints = typing.get_type_hints(annotation)
        fields = {
            k: cs.typed_dict_field(cs.nullable_schema(s), required=False)
            for k, s in ((k, _schema(v, defs)) for k, v in hints.items())
            if s is not None
        }
        return cs.typed_dict_schema(fields, extra_behavior="ignore", total=False)
    if issubclass(annotation, enum.Enum):
        return _union([_scalar(type(m.value)) for m in annotation])
    if annotation in _SEQUENCES:
        return cs.list_schema(strict=True)
    if annotation in _MAPPINGS:
        return cs.dict_schema(strict=True)
    if issubclass(annotation, datetime.date | datetime.time | datetime.timedelta):
        return _union([_STRING, _NUMBER])  # ISO text or a number of seconds
    return _scalar(annotation)


def _scalar(cls: type) -> CoreSchema | None:
    if issubclass(cls, bool):  # before int: bool is an int to Python, not to JSON
        return _BOOLEAN
    if issubclass(cls, int | float):
        return _NUMBER
    if issubclass(cls, str | bytes):
        return _STRING
    if cls is type(None):
        return _NULL
    return None


def _union(schemas: list[CoreSchema | None]) -> CoreSchema | None:
    """Any of ``schemas`` (``None``, anything, if one of them is); null is left out, it is always allowed."""
    if any(s is None for s in schemas):
        return None
    unique: list[CoreSchema] = []
    for s in schemas:
        if s is not None and s not in unique and s is not _NULL:
            unique.append(s)
    if not unique:
        return _NULL
    if len(unique) == 1:
        return unique[0]
    # Left to right: the first member that accepts the value ends the check.
    return cs.union_schema([(s, f"{_LABEL}{i}") for i, s in enumerate(unique)], mode="left_to_right")


def _mismatch(type_name: str, data: Any, err: ValidationError) -> Mismatch:
    """The deepest failing location (the most precise one) and every kind a union there would take."""
    located = [(tuple(p for p in e["loc"] if not _is_label(p)), e) for e in err.errors()]
    deepest = max(len(loc) for loc, _ in located)
    loc = next(loc for loc, _ in located if len(loc) == deepest)
    expected: list[str] = []
    for other, e in located:
        if other == loc:
            kind = _KIND_OF_ERROR.get(e["type"], e["msg"])
            if kind not in expected:
                expected.append(kind)
    if loc:
        expected.append("null")
    value = data
    for part in loc:
        value = value[part]
    short = type_name.rpartition(".")[2]
    problem = f"{short} holds {' or '.join(expected)} here, got {describe(value)}"
    return Mismatch("".join(_step(p) for p in loc), problem)


def _is_label(part: str | int) -> bool:
    return isinstance(part, str) and part.startswith(_LABEL)


def _step(part: str | int) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    return f".{part}" if _IDENTIFIER.match(part) else f"[{json.dumps(part)}]"


def describe(value: Any) -> str:
    """A JSON value as a person reading the file would name it: its kind, and a scalar's text."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    kind = "a boolean" if isinstance(value, bool) else "a string" if isinstance(value, str) else "a number"
    text = json.dumps(value)
    return f"{kind} ({text if len(text) <= 60 else text[:57] + '...'})"
