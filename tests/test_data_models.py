"""Data sources, credentials and events: defaults, field-named errors, and secrets that never show."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pydantic import BaseModel, ValidationError

import jupyter_runai.models as models
from jupyter_runai.models import (
    Credential,
    CredentialView,
    DataSource,
    Event,
    EventType,
    error_body,
    format_validation_error,
)

SECRET = "hf_Zq9xSECRETvalue"


def errors_of(model: type[BaseModel], data: object) -> list[dict]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return format_validation_error(info.value)


def error_for(model: type[BaseModel], data: dict, field: str) -> dict:
    items = errors_of(model, data)
    matches = [item for item in items if item["field"] == field]
    assert matches, f"no error for {field!r}; got {items}"
    return matches[0]


def test_exported_from_models():
    for name in ("DataSource", "DataSourceKind", "Credential", "CredentialView", "CredentialInjection",
                 "Event", "EventType"):
        assert name in models.__all__ and hasattr(models, name)


# ------------------------------------------------------------ data sources


def test_host_path_defaults_are_stated():
    source = DataSource(name="imagenet", kind="host_path", path="/datasets//imagenet/")
    assert source.path == "/datasets/imagenet"
    assert source.read_only is True
    assert source.target == "data/imagenet"
    assert source.url is None and source.revision is None


def test_git_source_with_revision_and_target():
    source = DataSource(name="code", kind="git", url="https://github.com/org/repo.git", revision="v1.2",
                        target="./src//repo/")
    assert source.target == "src/repo"
    assert source.read_only is None  # host_path only
    scp = DataSource(name="code", kind="git", url="git@github.com:org/repo.git")
    assert scp.revision is None and scp.target == "data/code"


@pytest.mark.parametrize(
    "data",
    [
        {"name": "a", "kind": "host_path", "path": "/d", "read_only": False, "target": "in/a"},
        {"name": "b", "kind": "git", "url": "ssh://git@example.com:22/org/b.git", "revision": "main"},
    ],
)
def test_data_source_round_trips(data):
    source = DataSource.model_validate(data)
    assert DataSource.model_validate_json(source.model_dump_json()) == source
    assert DataSource.model_validate(source.model_dump()) == source


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"name": "a", "kind": "s3"}, "kind", "'host_path', 'git'"),
        ({"name": "A_b", "kind": "git", "url": "https://x/y"}, "name", "DNS-1123"),
        ({"name": "a", "kind": "host_path"}, "path", "required for kind 'host_path'"),
        ({"name": "a", "kind": "git"}, "url", "required for kind 'git'"),
        ({"name": "a", "kind": "host_path", "path": "data/x"}, "path", "absolute"),
        ({"name": "a", "kind": "host_path", "path": "/data/../etc"}, "path", "no '..'"),
        ({"name": "a", "kind": "host_path", "path": "/d", "url": "https://x/y"}, "url", "only for kind 'git'"),
        ({"name": "a", "kind": "git", "url": "https://x/y", "read_only": True}, "read_only",
         "only for kind 'host_path'"),
        ({"name": "a", "kind": "git", "url": "ftp://x/y"}, "url", "https://"),
        ({"name": "a", "kind": "git", "url": "--upload-pack=evil"}, "url", "git repository URL"),
        ({"name": "a", "kind": "git", "url": "https://x/y", "revision": "-x"}, "revision", "branch, tag or commit"),
        ({"name": "a", "kind": "git", "url": "https://x/y", "revision": "a..b"}, "revision", "branch"),
        ({"name": "a", "kind": "host_path", "path": "/d", "target": "/abs"}, "target", "relative path"),
        ({"name": "a", "kind": "host_path", "path": "/d", "target": "x/../../y"}, "target", "no '..'"),
        ({"name": "a", "kind": "host_path", "path": "/d", "target": "./"}, "target", "not the working directory"),
        ({"name": "a", "kind": "host_path", "path": "/d", "bucket": "b"}, "bucket", "unknown field"),
    ],
)
def test_data_source_errors_name_the_field(data, field, says):
    item = error_for(DataSource, data, field)
    assert item["message"].startswith(f"{field}: ")
    assert says in item["message"]


def test_data_source_kind_error_lists_the_allowed_kinds():
    assert error_for(DataSource, {"name": "a", "kind": "bucket"}, "kind")["allowed"] == ["host_path", "git"]


@pytest.mark.parametrize("url", ["https://me:Zq9xTOKEN@github.com/o/r.git", "htps://me:Zq9xTOKEN@github.com/o/r"])
def test_a_token_in_a_git_url_is_refused_and_never_echoed(url):
    with pytest.raises(ValidationError) as info:
        DataSource.model_validate({"kind": "git", "url": url})  # name missing too: that error holds the whole input
    exc = info.value
    for text in (str(exc), repr(exc), exc.json(), repr(exc.errors()), json.dumps(error_body(exc))):
        assert "Zq9xTOKEN" not in text
    assert "put it in a credential" in error_for(DataSource, {"name": "a", "kind": "git", "url": url}, "url")["message"]


# ------------------------------------------------------------- credentials


def test_env_credential_and_its_public_view():
    credential = Credential(name="hf", inject_as="env", data={"HF_TOKEN": SECRET, "B_KEY": "two"})
    assert credential.mount_path is None
    view = credential.describe()
    assert isinstance(view, CredentialView)
    assert view.model_dump(mode="json") == {"name": "hf", "inject_as": "env", "keys": ["B_KEY", "HF_TOKEN"],
                                            "mount_path": None}
    assert credential.secret_values() == {"HF_TOKEN": SECRET, "B_KEY": "two"}


def test_file_credential_gets_a_default_mount_path():
    credential = Credential(name="registry", inject_as="file", data={"config.json": "{}", ".netrc": "x"})
    assert credential.mount_path == ".credentials/registry"
    assert Credential(name="r", inject_as="file", data={"k": "v"}, mount_path="secrets//r/").mount_path == "secrets/r"


def test_secret_values_never_show_in_repr_dumps_or_views():
    credential = Credential(name="hf", inject_as="file", data={"token": SECRET})
    for text in (repr(credential), str(credential), credential.model_dump_json(),
                 json.dumps(credential.model_dump(mode="json")), repr(credential.describe()),
                 credential.describe().model_dump_json()):
        assert SECRET not in text
    # A credential read back from its own JSON dump would carry the mask, not the value: only
    # secret_values() gives the value (the store writes that).
    assert credential.model_dump(mode="json")["data"] == {"token": "**********"}


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"name": "c", "inject_as": "env", "data": {"1BAD": SECRET}}, "data.1BAD", "environment variable name"),
        ({"name": "c", "inject_as": "env", "data": {"A B": SECRET}}, "data.A B", "environment variable name"),
        ({"name": "c", "inject_as": "file", "data": {"a/b": SECRET}}, "data.a/b", "file name"),
        ({"name": "c", "inject_as": "file", "data": {"..": SECRET}}, "data...", "file name"),
        ({"name": "c", "inject_as": "env", "data": {"K": SECRET}, "mount_path": "x"}, "mount_path",
         "only for inject_as 'file'"),
        ({"name": "c", "inject_as": "file", "data": {"k": SECRET}, "mount_path": "/etc"}, "mount_path",
         "relative path"),
        ({"name": "c", "inject_as": "file", "data": {"k": SECRET}, "mount_path": "../x"}, "mount_path", "no '..'"),
        ({"name": "c", "inject_as": "vault", "data": {"K": SECRET}}, "inject_as", "'env', 'file'"),
        ({"name": "C", "inject_as": "env", "data": {"K": SECRET}}, "name", "DNS-1123"),
        ({"name": "c", "inject_as": "env", "data": {}}, "data", "at least 1"),
        ({"name": "c", "inject_as": "env", "data": {"K": 12345}}, "data.K", "valid string"),
        ({"inject_as": "env", "data": {"K": SECRET}}, "name", "required"),
        ({"name": "c", "inject_as": "env", "data": {"K": SECRET}, "dta": {"K": SECRET}}, "dta",
         "unknown field (did you mean 'data'?)"),
    ],
)
def test_credential_errors_name_the_field_and_never_echo_a_secret(data, field, says):
    with pytest.raises(ValidationError) as info:
        Credential.model_validate(data)
    exc = info.value
    items = format_validation_error(exc)
    matches = [item for item in items if item["field"] == field]
    assert matches, items
    assert says in matches[0]["message"]
    for text in (str(exc), repr(exc), exc.json(), repr(exc.errors()), json.dumps(error_body(exc)), repr(items)):
        assert SECRET not in text
        assert "12345" not in text


@pytest.mark.parametrize("data", [SECRET, [SECRET], {"K": [SECRET]}, {"K": {"nested": SECRET}}])
def test_malformed_data_never_echoes_a_secret(data):
    with pytest.raises(ValidationError) as info:
        Credential(name="c", inject_as="env", data=data)
    exc = info.value
    for text in (str(exc), repr(exc), exc.json(), repr(exc.errors()), json.dumps(error_body(exc))):
        assert SECRET not in text


def test_a_whole_non_object_credential_is_not_echoed():
    items = errors_of(Credential, [SECRET])
    assert SECRET not in repr(items)


# ------------------------------------------------------------------ events


def test_event_round_trip_and_type_error():
    event = Event(id=3, at=datetime(2025, 1, 1, tzinfo=timezone.utc), type="Evicted", project="p", workload="w",
                  pod="w-0", message="reclaimed by q")
    assert event.type is EventType.EVICTED
    assert Event.model_validate_json(event.model_dump_json()) == event
    item = error_for(Event, {"id": 1, "at": "2025-01-01T00:00:00Z", "type": "Exploded"}, "type")
    assert "Submitted" in item["allowed"] and "Warning" in item["allowed"]
    assert error_for(Event, {"id": 1, "at": "2025-01-01T00:00:00", "type": "Failed"}, "at")["message"].startswith(
        "at: ")
    assert error_for(Event, {"id": 0, "at": "2025-01-01T00:00:00Z", "type": "Failed"}, "id")["allowed"] == ">= 1"


def test_json_schemas_forbid_unknown_fields_and_mark_secrets_write_only():
    for model in (DataSource, Credential, CredentialView, Event):
        for mode in ("validation", "serialization"):
            assert model.model_json_schema(mode=mode)["additionalProperties"] is False
    data = Credential.model_json_schema()["properties"]["data"]
    assert data["additionalProperties"]["writeOnly"] is True
