"""What the REST handlers read besides workloads: a project's data sources and credentials,
the event log, counts for the metrics, and the workload a proxy path names.

:class:`ProjectData` is a part of :class:`~jupyter_runai.service.RunaiService` (a mixin):
the REST handlers call these methods, never the store, so that the checks every request
needs (the project exists; later, who may see or change what) live in one place.
Credentials come back as their descriptions (names and keys): a value never leaves the
service through these methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import Conflict, NotFound
from .eventlog import MAX_EVENTS, event_type
from .models import Credential, CredentialView, DataSource, Event, Workload

if TYPE_CHECKING:
    from .identity import User

__all__ = ["ProjectData"]


class ProjectData:
    """Data sources, credentials and events (see the module docstring)."""

    # ------------------------------------------------------------------ data sources

    def data_sources(self, project: str, user: User | None = None) -> list[DataSource]:
        self.project(project)
        return self.store.data_sources(project)

    def data_source(self, project: str, name: str, user: User | None = None) -> DataSource:
        self.project(project)
        source = self.store.data_source(project, name)
        if source is None:
            raise NotFound(f"project {project!r} has no data source {name!r}", field="name")
        return source

    def add_data_source(self, project: str, body: dict[str, Any] | DataSource, user: User | None = None) -> DataSource:
        """Validate and store a new data source; 409 when the name is taken."""
        self.project(project)
        source = body if isinstance(body, DataSource) else DataSource.model_validate(body)
        if self.store.data_source(project, source.name) is not None:
            raise Conflict(f"project {project!r} already has a data source {source.name!r}", field="name")
        self.store.put_data_source(project, source)
        return source

    def delete_data_source(self, project: str, name: str, user: User | None = None) -> None:
        self.data_source(project, name, user)
        self.store.delete_data_source(project, name)

    # ------------------------------------------------------------------ credentials

    def credentials(self, project: str, user: User | None = None) -> list[CredentialView]:
        self.project(project)
        return self.store.credentials(project)

    def credential(self, project: str, name: str, user: User | None = None) -> CredentialView:
        self.project(project)
        credential = self.store.credential(project, name)
        if credential is None:
            raise NotFound(f"project {project!r} has no credential {name!r}", field="name")
        return credential.describe()

    def add_credential(self, project: str, body: dict[str, Any] | Credential,
                       user: User | None = None) -> CredentialView:
        """Validate and store a new credential; 409 when the name is taken. Returns its description."""
        self.project(project)
        credential = body if isinstance(body, Credential) else Credential.model_validate(body)
        if any(view.name == credential.name for view in self.store.credentials(project)):
            raise Conflict(f"project {project!r} already has a credential {credential.name!r}", field="name")
        self.store.put_credential(project, credential)
        return credential.describe()

    def delete_credential(self, project: str, name: str, user: User | None = None) -> None:
        self.credential(project, name, user)
        self.store.delete_credential(project, name)

    # ------------------------------------------------------------------ events

    def workload_events(self, project: str, name: str, limit: int, user: User | None = None) -> list[Event]:
        """The workload's newest ``limit`` events, oldest first."""
        self.get(project, name)
        return self.store.events(project=project, workload=name, limit=limit, newest=True) if limit else []

    def events_after(self, since_id: int, project: str | None = None, workload: str | None = None,
                     limit: int = 1000) -> list[Event]:
        """Stored events after ``since_id`` (for a resuming event stream; a blocking read)."""
        return self.store.events(since_id=since_id, project=project, workload=workload, limit=limit)

    def recent_events(self, project: str | None = None, workload: str | None = None, type: str | None = None,
                      limit: int = 100) -> list[Event]:
        """The newest ``limit`` stored events (oldest first), optionally of one project, workload and type
        (any case; another type is :class:`Invalid` naming the types)."""
        return self.store.events(project=project or None, workload=workload or None, type=event_type(type),
                                 limit=max(1, min(limit, MAX_EVENTS)), newest=True)

    def event_ids(self) -> tuple[int | None, int]:
        """(the oldest stored event id or None, the newest id given so far)."""
        return self.store.event_ids()

    # ------------------------------------------------------------------ metrics, the proxy

    def phase_counts(self) -> dict[tuple[str, str, str], int]:
        """Workloads by (project, kind, phase)."""
        counts: dict[tuple[str, str, str], int] = {}
        for workload in self.workloads.values():
            key = (workload.spec.project, workload.spec.kind.value, workload.status.phase.value)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def by_name(self, name: str) -> list[Workload]:
        """The workloads named ``name``, in any project (the proxy's path without a project)."""
        return [workload for workload in self.workloads.values() if workload.spec.name == name]
