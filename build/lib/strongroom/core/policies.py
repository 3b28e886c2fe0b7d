"""The policy store: ACL policies behind the barrier, and compiled ACLs cached per policy set.

``root`` is built in and never stored; ``default`` is stored at setup and may be edited
but not deleted. Every write or delete drops the ACL cache, so a change applies to the
very next request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from strongroom.core.acl import ACL
from strongroom.core.policy import (
    DEFAULT_POLICY_NAME,
    DEFAULT_POLICY_TEXT,
    RESPONSE_WRAPPING_POLICY_NAME,
    RESPONSE_WRAPPING_POLICY_TEXT,
    ROOT_POLICY_NAME,
    Policy,
    normalize_policy_name,
    parse_policy,
    render_policy,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import remember
from strongroom.logical import Storage

__all__ = ["PolicyStore"]

_ACL_CACHE_LIMIT = 4096
# Built in, never stored, never writable: "root" and the single-use wrapping tokens' policy.
_BUILT_IN = (ROOT_POLICY_NAME, RESPONSE_WRAPPING_POLICY_NAME)
_WRAPPING = parse_policy(RESPONSE_WRAPPING_POLICY_NAME, RESPONSE_WRAPPING_POLICY_TEXT)


class PolicyStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage  # a view on "sys/policy/"
        self._policies: dict[str, Policy | None] = {}
        self._acls: dict[tuple[str, ...], ACL] = {}

    async def setup_defaults(self) -> None:
        if await self._storage.get(DEFAULT_POLICY_NAME) is None:
            await self.put(DEFAULT_POLICY_NAME, DEFAULT_POLICY_TEXT)

    def invalidate(self) -> None:
        self._policies.clear()
        self._acls.clear()

    async def get(self, name: str) -> Policy | None:
        name = normalize_policy_name(name)
        if name in self._policies:
            return self._policies[name]
        raw = await self._storage.get(name)
        policy = None if raw is None else parse_policy(name, orjson.loads(raw)["policy"])
        self._policies[name] = policy
        return policy

    async def text(self, name: str) -> str | None:
        name = normalize_policy_name(name)
        if name == ROOT_POLICY_NAME:
            return ""
        raw = await self._storage.get(name)
        return None if raw is None else str(orjson.loads(raw)["policy"])

    async def put(self, name: str, text: str) -> None:
        name = normalize_policy_name(name)
        if name in _BUILT_IN:
            raise InvalidRequest(f'cannot update "{name}" policy')
        # Validates (InvalidRequest names the line). pyhcl parses ~1.5 ms per KB: a large
        # policy is parsed in a thread so the event loop keeps serving.
        if len(text) > 8192:
            await asyncio.to_thread(parse_policy, name, text)
        else:
            parse_policy(name, text)
        await self._storage.put(name, orjson.dumps({"name": name, "policy": text}))
        self.invalidate()

    async def delete(self, name: str) -> None:
        name = normalize_policy_name(name)
        if name in (*_BUILT_IN, DEFAULT_POLICY_NAME):
            raise InvalidRequest(f'cannot delete "{name}" policy')
        await self._storage.delete(name)
        self.invalidate()

    async def names(self) -> list[str]:
        names = {n for n in await self._storage.list("") if not n.endswith("/")}
        names.add(ROOT_POLICY_NAME)
        return sorted(names)

    async def acl(
        self,
        names: Iterable[str],
        *,
        entity_id: str = "",
        identity_version: int = 0,
        template_values: Callable[[], Mapping[str, str]] | None = None,
    ) -> ACL:
        """The compiled ACL of a set of policies, cached.

        With an ``entity_id``, templated policies (``{{identity.entity.name}}`` …) are
        rendered with that entity's values; the cache key then includes the entity and the
        identity store's version, so an identity change applies to the next request.
        Without one, templated rules grant nothing.
        """
        if not entity_id and isinstance(names, tuple):
            cached = self._acls.get(names)  # a token's policies are stored sorted already
            if cached is not None:
                return cached
        key: tuple[Any, ...] = tuple(sorted(set(names)))
        if entity_id:
            key = (*key, "\x00", entity_id, identity_version)
        acl = self._acls.get(key)
        if acl is not None:
            return acl
        policies: list[Policy] = []
        values: Mapping[str, str] | None = None
        for name in sorted(set(names)):
            if name == ROOT_POLICY_NAME:
                policies.append(Policy(name=ROOT_POLICY_NAME, rules=()))
                continue
            if name == RESPONSE_WRAPPING_POLICY_NAME:
                policies.append(_WRAPPING)
                continue
            policy = await self.get(name)
            if policy is None:
                continue
            if entity_id and template_values is not None and policy.templated:
                if values is None:
                    values = template_values()
                rendered = render_policy(policy.text, values)
                if rendered is not None:
                    policy = parse_policy(policy.name, rendered)
            policies.append(policy)
        acl = ACL(policies)
        remember(self._acls, key, acl, _ACL_CACHE_LIMIT)
        if not entity_id and isinstance(names, tuple):
            self._acls[names] = acl
        return acl
