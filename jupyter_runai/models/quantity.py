"""Kubernetes quantities: CPU in millicores, memory in bytes.

Input accepts what ``kubectl`` users write: CPU as cores or millicores
(``2``, ``"2"``, ``"1.5"``, ``"500m"``), memory as a quantity (``"20Gi"``,
``"512Mi"``, ``"1G"``, or a plain number of bytes). Strings go through the
kubernetes client's own parser (``kubernetes.utils.parse_quantity``).

Values are stored normalized: CPU as an ``int`` of millicores, memory as an
``int`` of bytes. They serialize back to a canonical quantity string
(``"500m"``, ``"2"``, ``"20Gi"``), because a bare number means cores for CPU:
writing millicores as a number would read back a thousand times larger.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated, Any

from kubernetes.utils import parse_quantity
from pydantic import BeforeValidator, PlainSerializer, ValidationInfo, WithJsonSchema

from .validation import invalid

__all__ = [
    "CPU_MAX_MILLICORES",
    "MEMORY_MAX_BYTES",
    "QUANTITY_TEXT_MAX",
    "Cpu",
    "Memory",
    "QuantityError",
    "format_cpu",
    "format_memory",
    "parse_cpu",
    "parse_memory",
]

#: the most CPU any quantity may state: 1,000,000 cores
CPU_MAX_MILLICORES = 1_000_000 * 1000
#: the most memory any quantity may state: 1 PiB (2**50 bytes)
MEMORY_MAX_BYTES = 2**50
#: validation context key: ``{STORED: True}`` reads a stored row, whose quantities skip their maxima
STORED = "stored"
#: the longest quantity text read (``"1.5Gi"`` is 5); longer texts are refused before parsing
QUANTITY_TEXT_MAX = 64

CPU_RULE = ("a CPU quantity: cores (2, '2', '0.5') or millicores ('500m'), 0 to 1000000 cores, "
            "in steps of 1m")
MEMORY_RULE = ("a memory quantity: bytes (1073741824) or with a suffix ('512Mi', '20Gi', '1G'), "
               "0 to 1Pi (1 PiB)")


class QuantityError(ValueError):
    """A quantity that cannot be read; the message says what is accepted."""


def _to_decimal(value: Any, rule: str, most: int | None, most_text: str) -> Decimal:
    """The quantity as a Decimal between 0 and ``most``, checked before any conversion to
    an integer: turning ``1e1000000`` into an ``int`` takes seconds and a lot of memory."""
    if isinstance(value, bool):  # bool is an int in Python, never a quantity
        raise QuantityError(f"must be {rule}")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"must be {rule}")
        number = Decimal(repr(value))  # 0.1 -> Decimal('0.1'), not its binary expansion
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        if most is not None and len(value) > QUANTITY_TEXT_MAX:
            raise QuantityError(f"must be {rule} (at most {QUANTITY_TEXT_MAX} characters)")
        try:
            number = parse_quantity(value.strip())
        except (ValueError, ArithmeticError):
            raise QuantityError(f"must be {rule}") from None
    else:
        raise QuantityError(f"must be {rule}")
    if not number.is_finite():
        raise QuantityError(f"must be {rule}")
    if number < 0:
        raise QuantityError(f"must be 0 or more ({rule})")
    if most is not None and number > most:
        raise QuantityError(f"must be at most {most_text} ({rule})")
    return number


def parse_cpu(value: Any, *, bounded: bool = True) -> int:
    """CPU quantity -> millicores: ``"500m"`` -> 500, ``2`` -> 2000, ``"1.5"`` -> 1500.
    ``bounded=False`` (only for rows an older version stored) skips the maximum."""
    most = CPU_MAX_MILLICORES // 1000 if bounded else None
    millis = _to_decimal(value, CPU_RULE, most, "1000000 cores") * 1000
    if millis != millis.to_integral_value():
        raise QuantityError(f"must be a whole number of millicores (1m is the smallest step); {CPU_RULE}")
    return int(millis)


def parse_memory(value: Any, *, bounded: bool = True) -> int:
    """Memory quantity -> bytes: ``"20Gi"`` -> 21474836480, ``"1G"`` -> 10**9.
    ``bounded=False`` (only for rows an older version stored) skips the maximum."""
    number = _to_decimal(value, MEMORY_RULE, MEMORY_MAX_BYTES if bounded else None, "1Pi (1 PiB)")
    if number != number.to_integral_value():
        hint = ""
        if isinstance(value, str) and value.strip().endswith("m"):
            hint = f" ('m' is milli; did you mean {value.strip()[:-1] + 'Mi'!r}?)"
        raise QuantityError(f"must be a whole number of bytes{hint}; {MEMORY_RULE}")
    return int(number)


def format_cpu(millicores: int) -> str:
    """Millicores -> canonical quantity: 500 -> ``"500m"``, 2000 -> ``"2"``."""
    cores, rest = divmod(int(millicores), 1000)
    return str(cores) if rest == 0 else f"{int(millicores)}m"


_BINARY = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))
_DECIMAL = (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3))


def format_memory(num_bytes: int) -> str:
    """Bytes -> the shortest exact quantity: 21474836480 -> ``"20Gi"``, 10**9 -> ``"1G"``."""
    num_bytes = int(num_bytes)
    candidates = [str(num_bytes)]
    if num_bytes:
        for table in (_BINARY, _DECIMAL):
            for suffix, size in table:
                if num_bytes % size == 0:
                    candidates.append(f"{num_bytes // size}{suffix}")
                    break
    return min(candidates, key=len)  # ties keep the earlier: plain, then binary


def _validator(parse, rule: str) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> int:
        # what the store reads back was accepted once, maybe by a version without maxima:
        # it loads, and a value the scheduler cannot use fails that workload alone
        stored = bool(info.context and info.context.get(STORED))
        try:
            return parse(value, bounded=not stored)
        except QuantityError as exc:
            raise invalid(info.field_name, str(exc), allowed=rule, got=value) from None

    return BeforeValidator(check)


def _schema(example_strings: list[str], example_number: int | float, what: str, most: int) -> list[Any]:
    accepted = {
        "anyOf": [
            {"type": "string", "maxLength": QUANTITY_TEXT_MAX,
             "pattern": r"^\s*[0-9.]+([eE][-+]?[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?\s*$"},
            {"type": "number", "minimum": 0, "maximum": most},
        ],
        "examples": [*example_strings, example_number],
        "description": what,
    }
    produced = {"type": "string", "examples": example_strings, "description": what}
    return [WithJsonSchema(accepted, mode="validation"), WithJsonSchema(produced, mode="serialization")]


Cpu = Annotated[
    int,
    _validator(parse_cpu, CPU_RULE),
    PlainSerializer(format_cpu, return_type=str),
    *_schema(["500m", "2"], 2, "CPU quantity (cores, or millicores with 'm'), at most 1000000 cores",
            CPU_MAX_MILLICORES // 1000),
]
"""CPU: read from cores or millicores, stored as ``int`` millicores, written as ``"500m"``/``"2"``."""

Memory = Annotated[
    int,
    _validator(parse_memory, MEMORY_RULE),
    PlainSerializer(format_memory, return_type=str),
    *_schema(["512Mi", "20Gi"], 1073741824, "memory quantity (bytes, or with a suffix such as Mi, Gi, G), at most 1Pi",
            MEMORY_MAX_BYTES),
]
"""Memory: read from a quantity, stored as ``int`` bytes, written as ``"20Gi"``."""
