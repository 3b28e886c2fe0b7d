"""kubernetes ``role/`` (LIST) and ``role/<name>`` (create, read, update, delete).

``bound_service_account_names`` and ``bound_service_account_namespaces`` are required; each
entry is a glob (``*`` alone allows all, ``dev-*`` a prefix), and ``*`` cannot be mixed with
other values (Vault's rule). ``alias_name_source`` chooses the identity alias name:
``serviceaccount_uid`` (the default, and the safe one: a deleted and re-created account gets a
new UID) or ``serviceaccount_name`` (``<namespace>/<name>``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strongroom.auth._common import RoleTablePaths, given, storage_of
from strongroom.auth._tokenfields import TOKEN_FIELD_NAMES, TokenFieldArgs, TokenParams
from strongroom.errors import InvalidRequest
from strongroom.framework import get_json, put_json
from strongroom.logical import Request, Storage

__all__ = ["ROLE_PREFIX", "K8sRole", "RoleArgs", "RolePaths", "load_role"]

ROLE_PREFIX = "role/"
_NAME = re.compile(r"[\w.@\-]+")
_ALIAS_SOURCES = ("serviceaccount_uid", "serviceaccount_name")


@dataclass(frozen=True, slots=True)
class K8sRole:
    bound_service_account_names: tuple[str, ...] = ()
    bound_service_account_namespaces: tuple[str, ...] = ()
    audience: str = ""
    alias_name_source: str = "serviceaccount_uid"
    token: TokenParams = field(default_factory=TokenParams)

    def to_record(self) -> dict[str, Any]:
        return {
            "bound_service_account_names": list(self.bound_service_account_names),
            "bound_service_account_namespaces": list(self.bound_service_account_namespaces),
            "audience": self.audience,
            "alias_name_source": self.alias_name_source,
            "token": self.token.to_record(),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> K8sRole:
        return cls(
            bound_service_account_names=tuple(record.get("bound_service_account_names", ())),
            bound_service_account_namespaces=tuple(
                record.get("bound_service_account_namespaces", ())
            ),
            audience=str(record.get("audience", "")),
            alias_name_source=str(record.get("alias_name_source", "serviceaccount_uid")),
            token=TokenParams.from_record(record.get("token")),
        )

    def describe(self) -> dict[str, Any]:
        record = self.to_record()
        del record["token"]
        return {**record, **self.token.describe()}


async def load_role(storage: Storage, name: str) -> K8sRole | None:
    record = await get_json(storage, ROLE_PREFIX + name)
    return None if record is None else K8sRole.from_record(record)


@dataclass(frozen=True, slots=True)
class RoleArgs(TokenFieldArgs):
    name: str
    bound_service_account_names: list[str] | None = None
    bound_service_account_namespaces: list[str] | None = None
    audience: str | None = None
    alias_name_source: str | None = None


def _role_name(raw: str) -> str:
    if _NAME.fullmatch(raw) is None or set(raw) == {"."}:
        raise InvalidRequest("name: letters, digits, '_', '-', '.' and '@' only")
    return raw


def _check_globs(values: tuple[str, ...], name: str) -> None:
    if not values:
        raise InvalidRequest(f"{name} must be set")
    if len(values) > 1 and "*" in values:
        raise InvalidRequest(f'{name}: can not mix "*" with values')


class RolePaths(RoleTablePaths):
    role_args = RoleArgs
    synopsis = "Manage a role: which service accounts may log in, and their token."
    description = __doc__ or ""

    def role_name(self, raw: str) -> str:
        return _role_name(raw)

    async def load(self, storage: Storage, name: str) -> K8sRole | None:
        return await load_role(storage, name)

    async def write_role(self, request: Request, args: RoleArgs) -> None:
        name = _role_name(args.name)
        storage = storage_of(request)
        role = await load_role(storage, name) or K8sRole()
        changes = given(args, exclude=("name", *TOKEN_FIELD_NAMES))
        for key in ("bound_service_account_names", "bound_service_account_namespaces"):
            if key in changes:
                changes[key] = tuple(changes[key])
        role = dataclasses.replace(role, **changes, token=role.token.updated(args))
        _check_globs(role.bound_service_account_names, "bound_service_account_names")
        _check_globs(role.bound_service_account_namespaces, "bound_service_account_namespaces")
        if role.alias_name_source not in _ALIAS_SOURCES:
            raise InvalidRequest(
                'alias_name_source: must be "serviceaccount_uid" or "serviceaccount_name"'
            )
        await put_json(storage, ROLE_PREFIX + name, role.to_record())
