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

from typing import Iterable

from pydantic import ValidationError

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
}


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


def problems(path: str, exc: ValidationError, prefix: Iterable = ()) -> list[str]:
    """One ``path:location: message`` line per error of ``exc``, in order;
    ``prefix`` is put before every location (a part of a larger file)."""
    lead = tuple(prefix)
    lines = []
    for error in exc.errors(include_url=False):
        where = location(lead + tuple(error.get("loc", ())))
        lines.append(f"{path}:{where}: {message(error)}" if where else f"{path}: {message(error)}")
    return lines
