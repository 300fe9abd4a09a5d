"""The base class of every model, and a checked enum field type."""

from __future__ import annotations

import difflib
from enum import Enum
from typing import Annotated, Any, Callable, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from .validation import Problems, invalid

__all__ = ["RunaiModel", "one_of"]


class RunaiModel(BaseModel):
    """Base of all boundary objects: unknown fields are errors, not silently dropped.

    An unknown key is reported at its own path, with the nearest known field
    name as a suggestion and the full list of known fields as ``allowed``.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _reject_unknown_fields(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        fields = cls.model_fields  # a class property: look it up once, not per key (stored lists load faster)
        unknown = [key for key in data if key not in fields]
        if not unknown:
            return handler(data)
        # Report the unknown keys together with whatever else is wrong in the rest.
        known = list(fields)
        problems = Problems(cls.__name__)
        for key in unknown:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.add(
                str(key),
                f"unknown field{hint}; {cls.__name__} has the fields {', '.join(known)}",
                allowed=known,
                input=data[key],
            )
        try:
            handler({key: value for key, value in data.items() if key in fields})
        except ValidationError as exc:
            problems.extend(exc)
        problems.raise_if_any()
        return None  # not reached: there was at least one unknown field


E = TypeVar("E", bound=Enum)


def one_of(enum: type[E]) -> Any:
    """``Annotated[enum, ...]`` whose error lists the allowed values.

    Accepts the enum member or its value (a string); the JSON schema stays the
    plain enum.
    """
    values = [member.value for member in enum]

    def check(value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, enum):
            return value
        if isinstance(value, str) and value in values:
            return enum(value)
        raise invalid(
            info.field_name,
            "must be one of " + ", ".join(repr(v) for v in values),
            allowed=values,
            got=value,
        )

    return Annotated[enum, BeforeValidator(check)]
