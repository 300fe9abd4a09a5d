"""Validation errors that name the field and what it accepts.

Two halves:

* raising: :func:`invalid` (inside a field validator) and :class:`Problems`
  (inside a model validator, where one check may concern several fields) build
  pydantic errors whose context carries ``reason``, ``allowed`` and ``got``;
* reporting: :func:`format_validation_error` turns any pydantic
  ``ValidationError`` (ours or pydantic's own) into
  ``[{"field": "resources.gpu", "message": ..., "allowed": ...}]`` items, and
  :func:`error_body` into the REST API's ``{"error": {...}}`` document.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = [
    "Problems",
    "error_body",
    "format_validation_error",
    "invalid",
]

# The message every error of ours renders, from its context.
_TEMPLATE = "{field}: {reason}{got_text}"
_ERROR_TYPE = "runai_invalid"
_NOT_GIVEN: Any = object()
REDACTED = "**********"  # what a secret input reads as in an error (as pydantic's SecretStr shows it)


def _got_text(got: Any) -> str:
    if got is _NOT_GIVEN:
        return ""
    text = repr(got)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"; got {text}"


def _jsonable(value: Any) -> Any:
    """Context values end up in JSON (REST errors, ``exc.json()``)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def invalid(field: str | None, reason: str, *, allowed: Any = None, got: Any = _NOT_GIVEN) -> PydanticCustomError:
    """An error for one field: raise it from a field validator.

    ``field`` is the field's own name (pydantic adds the path above it);
    ``reason`` says what the field must be, in words that name the allowed
    values or range; ``allowed`` is the same in a machine-friendly form (a list
    of values, or a short range text); ``got`` is the offending input.
    """
    ctx = {
        "field": field or "value",
        "reason": reason,
        "allowed": _jsonable(allowed),
        "got_text": _got_text(got),
    }
    return PydanticCustomError(_ERROR_TYPE, _TEMPLATE, ctx)


class Problems:
    """Collects errors found by a model validator, then raises them together.

    Each error is placed at its own field (``loc``), so a cross-field check
    still reports ``resources.gpu_limit`` rather than ``resources``.
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self._errors: list[InitErrorDetails] = []

    def add(
        self,
        field: str | tuple[str | int, ...],
        reason: str,
        *,
        allowed: Any = None,
        got: Any = _NOT_GIVEN,
        input: Any = None,
    ) -> None:
        """Record an error at ``field`` (a name, or a path below the model)."""
        loc = (field,) if isinstance(field, str) else tuple(field)
        leaf = str(loc[-1]) if loc else None
        self._errors.append(
            {
                "type": invalid(leaf, reason, allowed=allowed, got=got),
                "loc": loc,
                "input": got if got is not _NOT_GIVEN else input,
            }
        )

    def extend(self, exc: ValidationError, *, redact: Callable[[Any], bool] | None = None) -> None:
        """Add the errors of another validation of the same object (same locations).

        ``redact(error)`` (given each of ``exc.errors()``) returning true replaces
        that error's input with ``**********``: for models that hold secrets.
        """
        for error in exc.errors(include_url=False):
            kind: Any = error["type"]
            ctx = error.get("ctx")
            if kind == _ERROR_TYPE:
                kind = PydanticCustomError(_ERROR_TYPE, _TEMPLATE, ctx)
            else:
                try:
                    ValidationError.from_exception_data("probe", [{"type": kind, "loc": (), "input": None,
                                                                    **({"ctx": ctx} if ctx else {})}])
                except (KeyError, TypeError, ValueError):
                    kind = PydanticCustomError(kind, error["msg"].replace("{", "(").replace("}", ")"))
            value = REDACTED if redact is not None and redact(error) else error.get("input")
            detail: InitErrorDetails = {"type": kind, "loc": error["loc"], "input": value}
            if ctx and not isinstance(kind, PydanticCustomError):
                detail["ctx"] = ctx
            self._errors.append(detail)

    def __bool__(self) -> bool:
        return bool(self._errors)

    def raise_if_any(self) -> None:
        if self._errors:
            raise ValidationError.from_exception_data(self.title, self._errors)


# ---------------------------------------------------------------- reporting


def field_path(loc: Iterable[str | int]) -> str | None:
    """``("spec", "pods", 0, "name")`` -> ``"spec.pods[0].name"``; root -> None."""
    path = ""
    for part in loc:
        if part == "[key]":  # pydantic marks an error in a dict key this way
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or None


# What a builtin pydantic error type accepts, in words.
_BUILTIN_ALLOWED = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "datetime_type": "an ISO 8601 date-time with a time zone",
    "datetime_parsing": "an ISO 8601 date-time with a time zone",
    "datetime_from_date_parsing": "an ISO 8601 date-time with a time zone",
    "timezone_aware": "an ISO 8601 date-time with a time zone",
}

_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _builtin_allowed(error: dict[str, Any]) -> Any:
    ctx = error.get("ctx") or {}
    for key, sign in _BOUNDS:
        if key in ctx:
            bound = ctx[key]
            if isinstance(bound, float) and bound.is_integer():
                bound = int(bound)
            return f"{sign} {bound}"
    if "expected" in ctx:
        return str(ctx["expected"])
    if "max_length" in ctx:
        return f"at most {ctx['max_length']} items or characters"
    if "min_length" in ctx:
        return f"at least {ctx['min_length']} items or characters"
    return _BUILTIN_ALLOWED.get(error["type"])


def _short_repr(value: Any) -> str | None:
    if isinstance(value, (str, int, float, bool)) or value is None:
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return None


def format_validation_error(exc: ValidationError) -> list[dict[str, Any]]:
    """One ``{"field", "message", "allowed"}`` item per error, in pydantic's order.

    ``field`` is the dotted path of the offending field (``None`` for the
    document as a whole), ``message`` starts with that path, and ``allowed``
    names what the field accepts (a list of values, a range text, or ``None``
    where there is nothing more to say than the message).
    """
    items = []
    for error in exc.errors(include_url=False):
        path = field_path(error["loc"])
        ctx = error.get("ctx") or {}
        if error["type"] == _ERROR_TYPE:
            body = f"{ctx['reason']}{ctx.get('got_text', '')}"
            allowed = ctx.get("allowed")
        elif error["type"] == "missing":
            body, allowed = "required", None
        elif error["type"] == "extra_forbidden":
            body, allowed = "unknown field", None
        else:
            msg = error["msg"]
            body = msg[:1].lower() + msg[1:]
            got = _short_repr(error.get("input"))
            if got is not None:
                body += f"; got {got}"
            allowed = _jsonable(_builtin_allowed(error))
        message = f"{path}: {body}" if path else body
        items.append({"field": path, "message": message, "allowed": allowed})
    return items


def error_body(exc: ValidationError) -> dict[str, Any]:
    """The REST API's error document: the first error, plus all of them.

    ``{"error": {"message", "field", "allowed", "errors": [...]}}``.
    """
    items = format_validation_error(exc)
    first = items[0] if items else {"field": None, "message": str(exc), "allowed": None}
    return {"error": {**first, "errors": items}}
