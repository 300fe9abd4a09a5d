"""What the REST handlers read besides workloads: a project's data sources and credentials,
the event log, counts for the metrics, and the workload a proxy path names.

:class:`ProjectData` is a part of :class:`~jupyter_runai.service.RunaiService` (a mixin):
the REST handlers call these methods, never the store, so that the checks every request
needs (the project exists; who may see or change what: ``rbac``) live in one place. Reading
takes a role that may view the project; adding and deleting, one that may edit its data
(researcher, ML engineer, department admin, admin).
Credentials come back as their descriptions (names and keys): a value never leaves the
service through these methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import access
from .errors import Conflict, NotFound
from .eventlog import MAX_EVENTS, event_type
from .models import Credential, CredentialView, DataSource, Event, Workload

if TYPE_CHECKING:
    from .identity import User

__all__ = ["ProjectData"]


class ProjectData:
    """Data sources, credentials and events (see the module docstring)."""

    def _project_for(self, project: str, user: "User | None", action: str = access.VIEW) -> None:
        """The project exists and ``user`` may ``action`` it (checked first: a 403 tells nothing)."""
        self.require(user, action, project=project)  # type: ignore[attr-defined]
        self.project(project)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ data sources

    def data_sources(self, project: str, user: User | None = None) -> list[DataSource]:
        self._project_for(project, user)
        return self.store.data_sources(project)

    def data_source(self, project: str, name: str, user: User | None = None) -> DataSource:
        self._project_for(project, user)
        source = self.store.data_source(project, name)
        if source is None:
            raise NotFound(f"project {project!r} has no data source {name!r}", field="name")
        return source

    def add_data_source(self, project: str, body: dict[str, Any] | DataSource, user: User | None = None) -> DataSource:
        """Validate and store a new data source; 409 when the name is taken."""
        self._project_for(project, user, access.EDIT_DATA)
        source = body if isinstance(body, DataSource) else DataSource.model_validate(body)
        if self.store.data_source(project, source.name) is not None:
            raise Conflict(f"project {project!r} already has a data source {source.name!r}", field="name")
        self.store.put_data_source(project, source)
        return source

    def delete_data_source(self, project: str, name: str, user: User | None = None) -> None:
        self._project_for(project, user, access.EDIT_DATA)
        self.data_source(project, name, user)
        self.store.delete_data_source(project, name)

    # ------------------------------------------------------------------ credentials

    def credentials(self, project: str, user: User | None = None) -> list[CredentialView]:
        self._project_for(project, user)
        return self.store.credentials(project)

    def credential(self, project: str, name: str, user: User | None = None) -> CredentialView:
        self._project_for(project, user)
        credential = self.store.credential(project, name)
        if credential is None:
            raise NotFound(f"project {project!r} has no credential {name!r}", field="name")
        return credential.describe()

    def add_credential(self, project: str, body: dict[str, Any] | Credential,
                       user: User | None = None) -> CredentialView:
        """Validate and store a new credential; 409 when the name is taken. Returns its description."""
        self._project_for(project, user, access.EDIT_DATA)
        credential = body if isinstance(body, Credential) else Credential.model_validate(body)
        if any(view.name == credential.name for view in self.store.credentials(project)):
            raise Conflict(f"project {project!r} already has a credential {credential.name!r}", field="name")
        self.store.put_credential(project, credential)
        return credential.describe()

    def delete_credential(self, project: str, name: str, user: User | None = None) -> None:
        self._project_for(project, user, access.EDIT_DATA)
        self.credential(project, name, user)
        self.store.delete_credential(project, name)

    # ------------------------------------------------------------------ events

    def workload_events(self, project: str, name: str, limit: int, user: User | None = None) -> list[Event]:
        """The workload's newest ``limit`` events, oldest first."""
        self.get(project, name, user)  # type: ignore[attr-defined]
        return self.store.events(project=project, workload=name, limit=limit, newest=True) if limit else []

    def events_after(self, since_id: int, project: str | None = None, workload: str | None = None,
                     limit: int = 1000, user: User | None = None) -> list[Event]:
        """Stored events after ``since_id`` (for a resuming event stream; a blocking read), of the
        projects ``user`` may see."""
        if project is not None:
            self.require(user, access.VIEW, project=project)  # type: ignore[attr-defined]
        visible = self.visible_projects(user)  # type: ignore[attr-defined]
        return self.store.events(since_id=since_id, project=project, workload=workload, limit=limit,
                                 projects=None if visible is None else sorted(visible))

    def recent_events(self, user: User | None, project: str | None = None, workload: str | None = None,
                      type: str | None = None, limit: int = 100) -> list[Event]:
        """The newest ``limit`` stored events (oldest first) of what ``user`` may see, optionally of one
        project, workload and type (any case; another type is :class:`Invalid` naming the types)."""
        kind = event_type(type)
        if project:
            self.require(user, access.VIEW, project=project)  # type: ignore[attr-defined]
        visible = self.visible_projects(user)  # type: ignore[attr-defined]
        projects = None if project or visible is None else sorted(visible)
        return self.store.events(project=project or None, workload=workload or None, type=kind,
                                 limit=max(1, min(limit, MAX_EVENTS)), newest=True, projects=projects)

    def event_ids(self) -> tuple[int | None, int]:
        """(the oldest stored event id or None, the newest id given so far)."""
        return self.store.event_ids()

    # ------------------------------------------------------------------ metrics, the proxy

    def phase_counts(self, user: User | None = None) -> dict[tuple[str, str, str], int]:
        """Workloads by (project, kind, phase), of the projects ``user`` may see."""
        counts: dict[tuple[str, str, str], int] = {}
        visible = self.visible_projects(user)  # type: ignore[attr-defined]
        for workload in self.workloads.values():
            if visible is not None and workload.spec.project not in visible:
                continue
            key = (workload.spec.project, workload.spec.kind.value, workload.status.phase.value)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def by_name(self, name: str, user: User | None = None) -> list[Workload]:
        """The workloads named ``name``, in any project ``user`` may see (the proxy's path without a project)."""
        visible = self.visible_projects(user)  # type: ignore[attr-defined]
        return [workload for workload in self.workloads.values() if workload.spec.name == name
                and (visible is None or workload.spec.project in visible)]
