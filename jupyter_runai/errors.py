"""Errors the service raises for a person to read; the REST layer maps them to HTTP.

Each carries the HTTP status it stands for, a message in words, and where it
applies the ``field`` at fault and what the field ``allowed`` — the same shape
as validation errors (``models.validation.error_body``), so every client shows both
the same way.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Conflict", "Forbidden", "InsufficientStorage", "Invalid", "NotFound", "ServiceError", "Unavailable"]


class ServiceError(Exception):
    """Base class: ``status`` (HTTP), ``message``, optional ``field`` and ``allowed``."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None, allowed: Any = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        if field and not message.startswith(f"{field}:"):
            message = f"{field}: {message}"  # like validation errors: the field first
        super().__init__(message)
        self.message = message
        self.field = field
        self.allowed = allowed
        self.errors = errors  # every problem, when there are several (the first is the one above)

    def body(self) -> dict[str, Any]:
        """The REST error document: ``{"error": {"message", "field", "allowed", "errors": [...]}}``."""
        item = {"field": self.field, "message": self.message, "allowed": self.allowed}
        return {"error": {**item, "errors": list(self.errors) if self.errors else [item]}}


class Invalid(ServiceError):
    """The request is well formed but names something that does not fit (400)."""

    status = 400


class Forbidden(ServiceError):
    """The user may not do this (403)."""

    status = 403


class NotFound(ServiceError):
    """No such workload, project, data source or credential (404)."""

    status = 404


class Conflict(ServiceError):
    """The object exists already, or is in a state that does not allow the action (409)."""

    status = 409


class Unavailable(ServiceError):
    """The service is not taking requests now (the server is stopping) (503)."""

    status = 503


class InsufficientStorage(ServiceError):
    """The disk that holds the scheduler's state is full: the change was not saved, and
    nothing of it happened (507)."""

    status = 507
