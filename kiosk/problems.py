"""One way to say what is wrong with a file: ``path:location: message``.

Every validator of the kiosk (configuration, content pack, rules, media
manifest) describes its data as a pydantic model and reports through
:func:`problems`, so ``clinic-kiosk validate`` prints one line per problem,
the same shape everywhere and never a traceback.

>>> from pydantic import BaseModel, ConfigDict
>>> class Section(BaseModel):
...     model_config = ConfigDict(extra="forbid")
...     idle_timeout_s: int = 90
>>> class File(BaseModel):
...     model_config = ConfigDict(extra="forbid")
...     kiosk: Section = Section()
>>> try:
...     File.model_validate({"kiosk": {"idle_timeout_s": "soon", "colour": 1}})
... except ValueError as exc:
...     print("\\n".join(problems("kiosk.toml", exc)))
kiosk.toml:kiosk.idle_timeout_s: expected a whole number, got 'soon'
kiosk.toml:kiosk.colour: unknown key
"""

from __future__ import annotations

import typing
from typing import Any, Callable, Iterable

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails

#: Plain wording for pydantic's error types; ``{input}`` is the value given.
MESSAGES = {
    "int_parsing": "expected a whole number, got {input!r}",
    "int_type": "expected a whole number, got {input!r}",
    "int_from_float": "expected a whole number, got {input!r}",
    "float_parsing": "expected a number, got {input!r}",
    "float_type": "expected a number, got {input!r}",
    "bool_parsing": "expected true or false, got {input!r}",
    "bool_type": "expected true or false, got {input!r}",
    "string_type": "expected text, got {input!r}",
    "list_type": "expected a list, got {input!r}",
    "dict_type": "expected a table/object, got {input!r}",
    "model_type": "expected a table/object, got {input!r}",
    "model_attributes_type": "expected a table/object, got {input!r}",
    "missing": "required, but missing",
    "extra_forbidden": "unknown key",
    "unexpected_keyword_argument": "unknown key",
    "dataclass_type": "expected a table/object, got {input!r}",
}
#: Error types that mean "a key the model does not have".
UNKNOWN_KEY = {"extra_forbidden", "unexpected_keyword_argument"}


def location(loc: Iterable) -> str:
    """A pydantic location as the dotted path people write:
    ``("rules", 3, "when")`` reads ``rules[3].when``.

    >>> location(("rules", 3, "when")), location(()), location((0, "id"))
    ('rules[3].when', '', '[0].id')
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def message(error: dict) -> str:
    """One pydantic error in plain words; a message of our own (a
    ``ValueError`` raised in a validator) is kept as written."""
    kind = error.get("type", "")
    if kind == "value_error":
        ctx = error.get("ctx") or {}
        return str(ctx.get("error") or error.get("msg", "")).removeprefix("Value error, ")
    template = MESSAGES.get(kind)
    if template is None:
        return str(error.get("msg", kind))
    try:
        return template.format(input=error.get("input"))
    except (KeyError, IndexError, ValueError):
        return str(error.get("msg", kind))


def _fields(model) -> dict:
    """The fields of a pydantic model or pydantic dataclass ({} otherwise)."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_fields
    return getattr(model, "__pydantic_fields__", {}) if isinstance(model, type) else {}


def _inner(tp):
    """The model a field's type holds (through Optional, lists, dicts and Annotated)."""
    while True:
        if _fields(tp):
            return tp
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if not args:
            return None
        tp = args[-1] if typing.get_origin(tp) is dict else args[0]


def model_at(model, loc: Iterable):
    """The model found at ``loc`` inside ``model`` (None when it is not one)."""
    for part in loc:
        if isinstance(part, int):
            continue  # an index into a list of models
        fields = _fields(model)
        if part in fields:
            model = _inner(fields[part].annotation)
        elif not fields:
            continue  # a key of a dict of models
        else:
            return None
        if model is None:
            return None
    return model


def known_keys(model, loc: Iterable) -> tuple[str, str] | None:
    """(what a key of the model at ``loc`` is called, the keys it knows):
    a model names its keys with a ``unknown_word`` class attribute
    ("section" for the configuration file), else "key"."""
    found = model_at(model, loc)
    fields = _fields(found)
    if not fields:
        return None
    return getattr(found, "unknown_word", "key"), ", ".join(f.alias or name for name, f in fields.items())


def problems(path: str, exc: ValidationError, prefix: Iterable = (), model=None,
             relabel: Callable[[tuple], tuple] | None = None) -> list[str]:
    """One ``path:location: message`` line per error of ``exc``, in order;
    ``prefix`` is put before every location (a part of a larger file).

    With the ``model`` that was validated, an unknown key lists the keys
    the model knows; ``relabel`` may rewrite a location first (to name a
    list entry by its id, as ``rules[3] (ces-saddle)``)."""
    lead = tuple(prefix)
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(error.get("loc", ()))
        text = message(error)
        if model is not None and error.get("type") in UNKNOWN_KEY:
            known = known_keys(model, loc[:-1])
            if known:
                text = f"unknown {known[0]} (known: {known[1]})"
        if relabel is not None:
            loc = relabel(loc)
        where = location(lead + loc)
        lines.append(f"{path}:{where}: {text}" if where else f"{path}: {text}")
    return lines


def invalid(title: str, found: list[tuple[tuple, str, Any]]) -> ValidationError:
    """A ValidationError holding every ``(location, message, input)`` of
    ``found``, for a validator that checks several things at once and must
    report them all (pydantic stops at a validator's first raise)::

        raise invalid("Rule", [((), "reason is missing", None), (("codes",), "unknown linkId 'x'", "x")])
    """
    details = [InitErrorDetails(type="value_error", loc=tuple(loc), input=value, ctx={"error": msg})
               for loc, msg, value in found]
    return ValidationError.from_exception_data(title, details)
