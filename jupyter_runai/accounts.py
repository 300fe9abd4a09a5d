"""Whose system account a workload's processes run as (the local cluster under a root service).

On a shared machine set up as The Littlest JupyterHub does it, the service runs as root and each hub
user has a system account of their own (TLJH names it ``jupyter-<name>``). The local cluster then
runs every workload of a user as that user's account, never as root. :class:`RunAs` decides, from
the configuration (``c.RunaiApp.run_as``, ``c.RunaiApp.system_account``), which account a submitter's
workload runs as: ``None`` for the service's own account (nothing changes), or a
:class:`SystemAccount` looked up in the system's user database. See ``docs/jupyterhub.md``.
"""

from __future__ import annotations

import getpass
import os
import pwd
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .errors import Invalid

__all__ = ["RUN_AS_MODES", "RunAs", "SystemAccount"]

RUN_AS_MODES = ("auto", "submitter", "service")
"""``auto``: as the submitter's account when the service runs as root and the submitter is not the
service's own user; ``submitter``: always (the service must run as root); ``service``: never."""

_NAME_MAX = 256


@dataclass(frozen=True)
class SystemAccount:
    """A system account a pod's processes run as: who it is and what it gets (HOME, USER, groups)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    shell: str

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["groups"] = list(self.groups)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SystemAccount:
        return cls(name=str(data["name"]), uid=int(data["uid"]), gid=int(data["gid"]),
                   groups=tuple(int(g) for g in data.get("groups") or ()), home=str(data["home"]),
                   shell=str(data.get("shell") or "/bin/sh"))

    @classmethod
    def lookup(cls, name: str) -> SystemAccount | None:
        """The account of that name from the user database (passwd, and the groups it is in), or None."""
        try:
            entry = pwd.getpwnam(name)
        except (KeyError, ValueError):  # ValueError: a name with a NUL
            return None
        try:
            groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
        except OSError:
            groups = [entry.pw_gid]
        return cls(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid,
                   groups=tuple(sorted(set(groups))), home=entry.pw_dir or "/", shell=entry.pw_shell or "/bin/sh")


def _own_names() -> set[str]:
    names = set()
    try:
        names.add(pwd.getpwuid(os.geteuid()).pw_name)
    except KeyError:
        pass
    try:
        names.add(getpass.getuser())  # the name the server gives its own user (server/base.py)
    except (KeyError, OSError):
        pass
    return names


class RunAs:
    """The mapping from a hub user's name to the system account their workloads run as.

    ``account`` is a format string with ``{username}`` (``"{username}"``, TLJH's
    ``"jupyter-{username}"``) or a callable ``name -> account name``."""

    def __init__(self, mode: str = "auto", account: str | Callable[[str], str] = "{username}",
                 is_root: bool | None = None) -> None:
        if mode not in RUN_AS_MODES:
            raise ValueError(f"run_as must be one of {', '.join(RUN_AS_MODES)}, not {mode!r}")
        self.is_root = os.geteuid() == 0 if is_root is None else is_root
        if mode == "submitter" and not self.is_root:
            raise ValueError("run_as = 'submitter' needs the service to run as root (it changes to each "
                             "submitter's account); without root, workloads run as the service's own account")
        if isinstance(account, str):
            try:
                account.format(username="x")
            except (KeyError, IndexError, ValueError) as error:
                raise ValueError(f"system_account {account!r} must be a format string with only "
                                 f"{{username}} in braces: {error}") from None
        elif not callable(account):
            raise ValueError("system_account must be a format string such as 'jupyter-{username}' or a callable")
        self.mode = mode
        self.account = account
        self.own_names = _own_names()

    @property
    def active(self) -> bool:
        """True when some workloads may run as an account other than the service's."""
        return self.mode == "submitter" or (self.mode == "auto" and self.is_root)

    def account_name(self, username: str) -> str:
        name = self.account.format(username=username) if isinstance(self.account, str) else self.account(username)
        if not isinstance(name, str):
            raise TypeError(f"system_account gave {name!r} for {username!r}, not a name")
        return name

    def for_user(self, username: str | None) -> SystemAccount | None:
        """The account a workload of ``username`` runs as, or None for the service's own account.
        Raises ``Invalid`` (field ``submitted_by``) when that account does not exist: such a
        workload would otherwise run as root."""
        if not self.active:
            return None
        if self.mode == "auto" and (not username or username in self.own_names):
            return None
        allowed = (f"a user with a system account on this machine (c.RunaiApp.system_account = "
                   f"{self.account if isinstance(self.account, str) else 'a callable'!r})")
        try:
            name = self.account_name(username or "")
        except Exception as error:  # a callable that fails: never run as root instead
            raise Invalid(f"no system account for user {username!r}: the system_account mapping failed: {error}",
                          field="submitted_by", allowed=allowed) from None
        account = SystemAccount.lookup(name) if name and len(name) <= _NAME_MAX else None
        if account is None:
            raise Invalid(f"user {username!r} has no system account {name!r} on this machine, and the service "
                          f"runs workloads as their submitter's account (c.RunaiApp.run_as = {self.mode!r}); "
                          f"nothing was submitted", field="submitted_by", allowed=allowed)
        if account.uid == 0 and self.mode == "auto" and username not in self.own_names:
            raise Invalid(f"user {username!r} maps to the system account {name!r}, which is root; workloads of "
                          f"other users never run as root", field="submitted_by", allowed=allowed)
        return account

