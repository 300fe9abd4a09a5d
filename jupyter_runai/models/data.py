"""Data sources and credentials: defined once per project, attached to workloads by name.

* :class:`DataSource`: what a workload reads and writes, a directory of the node
  (``host_path``) or a git repository checked out at start (``git``), appearing
  at ``target`` inside the workload's working directory.
* :class:`Credential`: secrets (API keys, tokens) injected as environment
  variables or as files. Values are :class:`pydantic.SecretStr`: they never
  appear in ``repr``, in ``model_dump(mode="json")``, or in validation errors;
  :meth:`Credential.describe` is the public view (keys only) that every API and
  view returns. Only :meth:`Credential.secret_values` gives them back, for the
  store and for injection.
"""

from __future__ import annotations

import posixpath
import re
from enum import StrEnum
from typing import Annotated, Any, Callable, Optional
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from .base import RunaiModel, one_of
from .validation import REDACTED, Problems, invalid
from .names import DnsLabel

__all__ = [
    "Credential",
    "CredentialInjection",
    "CredentialView",
    "DataSource",
    "DataSourceKind",
]


#: characters of a path or URL
TEXT_MAX = 4096
#: keys of one credential, and characters of each secret value (a key file or certificate fits)
SECRET_KEYS_MAX = 256
SECRET_VALUE_MAX = 1_000_000

# ------------------------------------------------------------------ paths


NO_NUL = "without NUL bytes (no path, file name or environment can hold one)"


def _refuse_nul(field: str, value: Any, rule: str) -> None:
    """A NUL byte reaches no path and no process: refused by field, saying so."""
    if isinstance(value, str) and "\0" in value:
        raise invalid(field, f"must be {rule}, {NO_NUL}", allowed=f"{rule}, {NO_NUL}", got=value)


def _relative_path(value: Any, field: str) -> str:
    """A normalized relative path inside the working directory, or a field error."""
    rule = "a relative path inside the working directory (no leading '/', no '..')"
    _refuse_nul(field, value, rule)
    if not isinstance(value, str) or not value or value.startswith("/"):
        raise invalid(field, f"must be {rule}", allowed=rule, got=value)
    if ".." in value.split("/"):
        raise invalid(field, f"must be {rule}", allowed=rule, got=value)
    normal = posixpath.normpath(value)
    if normal == ".":
        raise invalid(field, f"must be {rule}, not the working directory itself", allowed=rule, got=value)
    return normal


def _check_relative(value: Any, info: ValidationInfo) -> Any:
    return None if value is None else _relative_path(value, info.field_name)


def _check_host_path(value: Any, info: ValidationInfo) -> Any:
    rule = "an absolute directory path on the node (starting with '/', no '..')"
    if value is None:
        return None
    _refuse_nul(info.field_name, value, rule)
    if not isinstance(value, str) or not value.startswith("/") or ".." in value.split("/"):
        raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value)
    return posixpath.normpath(value).replace("//", "/")  # normpath keeps a leading '//'


_URL_SCHEMES = ("https", "http", "ssh", "git", "file")
_SCHEME_URL = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<rest>[^\s]+)$")
_PASSWORD_IN_URL = re.compile(r"://[^/@]*:[^/@]*@")  # https://user:token@host/...
_SCP_URL = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<path>[^\s]+)$")
# git@github.com:org/repo.git


def _option_like(url: str) -> bool:
    """True when a user, host, port or path segment of the URL starts with '-', which git or
    ssh could read as an option (``ssh://-oProxyCommand=...``)."""
    match = _SCHEME_URL.match(url)
    if match:
        parts = urlsplit(url)
        if any(part.startswith("-") for part in re.split(r"[@:]", parts.netloc)):
            return True
        path = parts.path
    else:
        scp = _SCP_URL.match(url)
        if scp is None:
            return False
        path = scp["path"]
    return any(segment.startswith("-") for segment in path.split("/"))


def _check_url(value: Any, info: ValidationInfo) -> Any:
    rule = (
        "a git repository URL: " + ", ".join(f"{s}://..." for s in _URL_SCHEMES)
        + " or user@host:path, without a password or token in it, and with no user, host, port or "
        "path part that starts with '-'"
    )
    if value is None:
        return None
    _refuse_nul(info.field_name, value, "a git repository URL")
    if isinstance(value, str) and _PASSWORD_IN_URL.search(value):
        # Never echo it: the part before '@' is a secret.
        raise invalid(info.field_name, "must not contain a password or token: put it in a credential "
                      "and attach that to the workload", allowed=rule)
    if not isinstance(value, str) or value.startswith("-") or any(c.isspace() or ord(c) < 32 for c in value):
        raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value)
    if _option_like(value):
        raise invalid(info.field_name, f"must be {rule}: a part that starts with '-' would be read as an "
                      "option by git or ssh", allowed=rule, got=value)
    match = _SCHEME_URL.match(value)
    if match:
        if match["scheme"] not in _URL_SCHEMES:
            raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value)
        return value
    if _SCP_URL.match(value):
        return value
    raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value)


_REVISION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/+-]*$")


def _check_revision(value: Any, info: ValidationInfo) -> Any:
    rule = "a branch, tag or commit: letters, digits, '.', '_', '/', '+' and '-', not starting with '-' or '.'"
    if value is None:
        return None
    if (not isinstance(value, str) or len(value) > 255 or not _REVISION.match(value) or ".." in value
            or value.endswith(("/", ".", ".lock"))):
        raise invalid(info.field_name, f"must be {rule}", allowed=rule, got=value)
    return value


RelativePath = Annotated[Optional[str], BeforeValidator(_check_relative)]
HostPath = Annotated[Optional[str], BeforeValidator(_check_host_path)]
GitUrl = Annotated[Optional[str], BeforeValidator(_check_url)]
Revision = Annotated[Optional[str], BeforeValidator(_check_revision)]


def _redacting(title: str, handler: Callable[[Any], Any], data: Any, *, public: tuple[str, ...],
               keys_of: str | None = None) -> Any:
    """Validate with ``handler``; on errors, hide every input that may hold a secret.

    Inputs stay visible only for errors at a ``public`` field (or at a key of the
    dict field ``keys_of``: keys are not secret). A "missing" error's input is
    the whole object, so it is always hidden, as are errors about the object as
    a whole.
    """

    def redact(error: Any) -> bool:
        loc = tuple(error["loc"])
        if error["type"] == "missing" or not loc:
            return True
        if loc[0] in public:
            return False
        return not (keys_of is not None and loc[0] == keys_of and loc[-1] == "[key]")

    try:
        return handler(data)
    except ValidationError as exc:
        problems = Problems(title)
        problems.extend(exc, redact=redact)
        problems.raise_if_any()
        raise  # not reached: exc had at least one error


def _only_for(problems: Problems, model: Any, kind_field: str, fields: dict[str, str]) -> None:
    """Report each field of ``fields`` (field -> the kind it belongs to) set on another kind."""
    kind = getattr(model, kind_field)
    for field, owner in fields.items():
        if getattr(model, field) is not None and kind != owner:
            problems.add(field, f"only for {kind_field} {owner!r}; this one is {kind.value!r}",
                         allowed=f"unset unless {kind_field} is {owner!r}", got=getattr(model, field))


# ------------------------------------------------------------ data sources


class DataSourceKind(StrEnum):
    """Where the data comes from."""

    HOST_PATH = "host_path"  # a directory of the node, mounted (or linked, on the local cluster)
    GIT = "git"  # a repository cloned at start


DataSourceKindName = one_of(DataSourceKind)


class DataSource(RunaiModel):
    """Data a workload reads or writes, defined once per project and attached by name.

    After validation every default is stated: ``read_only`` (host_path) and ``target``.
    """

    name: DnsLabel = Field(description="Data source name, unique in its project: a DNS-1123 label.",
                           examples=["imagenet"])
    kind: DataSourceKindName = Field(description="host_path (a directory of the node) or git (a repository).")
    path: HostPath = Field(default=None, max_length=TEXT_MAX, description="host_path only, required there: the absolute directory "
                           "path on the node.", examples=["/datasets/imagenet"])
    read_only: Optional[bool] = Field(default=None, description="host_path only: mount read-only. Default true. "
                                     "The local cluster cannot enforce it (it links the path; the workload "
                                     "can write there) and says so in a Warning event.")
    url: GitUrl = Field(default=None, max_length=TEXT_MAX, description="git only, required there: the repository URL. A private "
                        "repository's token goes in a credential, never in the URL.",
                        examples=["https://github.com/org/repo.git"])
    revision: Revision = Field(default=None, description="git only: branch, tag or commit to check out. "
                               "Unset: the repository's default branch.")
    target: RelativePath = Field(default=None, max_length=TEXT_MAX, description="Where it appears: a path relative to the workload's "
                                 "working directory (no '..'). Default data/<name>.", examples=["data/imagenet"])

    @model_validator(mode="wrap")
    @classmethod
    def _never_echo_urls(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        # A URL may carry a token (rejected, but an error must not show it back).
        return _redacting(cls.__name__, handler, data, public=tuple(f for f in cls.model_fields if f != "url"))

    @model_validator(mode="after")
    def _check_kind_and_fill_defaults(self) -> "DataSource":
        problems = Problems("DataSource")
        _only_for(problems, self, "kind", {"path": "host_path", "read_only": "host_path",
                                           "url": "git", "revision": "git"})
        required = {DataSourceKind.HOST_PATH: "path", DataSourceKind.GIT: "url"}[self.kind]
        if getattr(self, required) is None:
            problems.add(required, f"required for kind {self.kind.value!r}", allowed=None)
        problems.raise_if_any()
        if self.kind == DataSourceKind.HOST_PATH and self.read_only is None:
            self.read_only = True
        if self.target is None:
            self.target = f"data/{self.name}"
        return self


# ------------------------------------------------------------- credentials


class CredentialInjection(StrEnum):
    """How a credential reaches the workload's processes."""

    ENV = "env"  # each key is an environment variable
    FILE = "file"  # each key is a file under mount_path (mode 0600)


InjectionName = one_of(CredentialInjection)
_ENV_NAME = re.compile(r"^[-._A-Za-z][-._A-Za-z0-9]*$")  # as WorkloadSpec.environment (Kubernetes' rule)
_ENV_RULE = "an environment variable name: letters, digits, '_', '-' and '.', not starting with a digit"
_FILE_RULE = "a file name: not empty, not '.' or '..', without '/'"


class CredentialView(RunaiModel):
    """The public view of a credential: what every API, CLI and view returns. Keys, never values."""

    name: DnsLabel = Field(description="Credential name.")
    inject_as: InjectionName = Field(description="env or file.")
    keys: list[str] = Field(description="Its keys (variable or file names), sorted. Values are never shown.")
    mount_path: Optional[str] = Field(default=None, description="file only: where the files appear.")


class Credential(RunaiModel):
    """Secrets a workload needs, stored per project and injected as environment variables or files.

    ``data`` maps a key (a variable name for ``env``, a file name for ``file``)
    to its secret value. After validation ``mount_path`` is stated for ``file``.
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: DnsLabel = Field(description="Credential name, unique in its project: a DNS-1123 label.",
                           examples=["hf-token"])
    inject_as: InjectionName = Field(
        description="env: each key becomes an environment variable; file: each key a file under mount_path.")
    data: dict[str, Annotated[SecretStr, Field(max_length=SECRET_VALUE_MAX)]] = Field(
        min_length=1,
        max_length=SECRET_KEYS_MAX,
        description=f"Key to secret value (at most {SECRET_KEYS_MAX} keys, each value at most "
        f"{SECRET_VALUE_MAX} characters). Values are write-only: no API or view returns them.",
        examples=[{"HF_TOKEN": "hf_..."}],
    )
    mount_path: RelativePath = Field(default=None, max_length=TEXT_MAX, description="file only: directory of the files, relative "
                                     "to the working directory. Default .credentials/<name>.")

    @model_validator(mode="wrap")
    @classmethod
    def _never_echo_secrets(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        return _redacting(cls.__name__, handler, data, public=("name", "inject_as", "mount_path"), keys_of="data")

    @model_validator(mode="after")
    def _check_keys_and_fill_defaults(self) -> "Credential":
        problems = Problems("Credential")
        if self.inject_as == CredentialInjection.ENV:
            if self.mount_path is not None:
                problems.add("mount_path", "only for inject_as 'file'; this one is 'env'",
                             allowed="unset unless inject_as is 'file'", got=self.mount_path)
            for key, value in self.data.items():
                if not _ENV_NAME.match(key):
                    problems.add(("data", key), f"keys must be {_ENV_RULE} (inject_as 'env')",
                                 allowed=_ENV_RULE, got=key, input=REDACTED)
                elif "\0" in value.get_secret_value():  # an environment cannot hold it (the value is not shown)
                    problems.add(("data", key), f"values must be {NO_NUL} (inject_as 'env')",
                                 allowed=f"a value {NO_NUL}", input=REDACTED)
        else:
            for key in self.data:
                if "\0" in key:
                    problems.add(("data", key), f"keys must be {_FILE_RULE}, {NO_NUL} (inject_as 'file')",
                                 allowed=f"{_FILE_RULE}, {NO_NUL}", got=key, input=REDACTED)
                elif not key or "/" in key or key in (".", ".."):
                    problems.add(("data", key), f"keys must be {_FILE_RULE} (inject_as 'file')",
                                 allowed=_FILE_RULE, got=key, input=REDACTED)
            if self.mount_path is None:
                self.mount_path = f".credentials/{self.name}"
        problems.raise_if_any()
        return self

    def describe(self) -> CredentialView:
        """The public view: name, inject_as, keys and mount_path; no values."""
        return CredentialView(name=self.name, inject_as=self.inject_as, keys=sorted(self.data),
                              mount_path=self.mount_path)

    def secret_values(self) -> dict[str, str]:
        """Key to value, in clear: for the store and for injection only. Never log or return this."""
        return {key: value.get_secret_value() for key, value in self.data.items()}
