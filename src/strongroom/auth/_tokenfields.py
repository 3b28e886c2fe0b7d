"""The ``token_*`` fields every auth method's users and roles carry (Vault's
``sdk/helper/tokenutil``), and how they become the :class:`~strongroom.logical.Auth` core mints
a token from.

Fields: ``token_ttl``, ``token_max_ttl``, ``token_period``, ``token_explicit_max_ttl``,
``token_num_uses``, ``token_no_default_policy``, ``token_policies``, ``token_bound_cidrs`` and
``token_type``. The pre-1.2 names ``policies``, ``ttl``, ``max_ttl``, ``period``, ``num_uses``
and ``bound_cidrs`` are accepted too; as in Vault, when both names are sent the ``token_*`` one
wins.

``token_type`` accepts ``default``, ``service``, ``batch``, ``default-service`` and
``default-batch`` (Vault's names); ``batch`` and ``default-batch`` make logins mint batch
tokens (``Auth.token_type``), which Vault refuses together with a period or a use count.

``token_bound_cidrs`` is checked at login against the caller's address (fail closed when the
address is unknown), and handed to core in ``internal_data["bound_cidrs"]`` so that core can
enforce it on every later use of the token.

Renewal (:func:`renewal_secrets`): Vault sends a token's renewal to the auth method that issued
it (``pathLoginRenew``), which may refuse (user deleted, policies changed, a different client
certificate) or answer the current TTL settings. Each method here exposes that hook as a
FrameworkBackend secret type named :data:`LOGIN_SECRET_TYPE`. Core calls it with::

    Request(operation=Operation.RENEW, path=<token path relative to the mount, e.g. "login/bob">,
            storage=<the mount's view>, mount_accessor=..., connection=<the renewing request's>,
            secret=Secret(type="login", internal_data=<the token's internal_data>,
                          increment=<requested increment>, issue_time=<token creation time>))

and applies the returned ``Response.auth`` (``ttl``, ``max_ttl``, ``period``,
``explicit_max_ttl``) as Vault's ``framework.CalculateTTL`` does. An error means "do not renew".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strongroom.auth._common import parse_cidrs, require_remote_in
from strongroom.errors import InvalidRequest
from strongroom.framework import Duration, SecretType
from strongroom.logical import Auth, Request, Response

__all__ = [
    "LOGIN_SECRET_TYPE",
    "TOKEN_FIELD_NAMES",
    "RenewCheck",
    "TokenFieldArgs",
    "TokenParams",
    "normalize_policies",
    "renewal_secrets",
]

_SERVICE_TYPES = ("", "default", "service", "default-service")
_BATCH_TYPES = ("batch", "default-batch")


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenFieldArgs:
    """Inherited by the args dataclass of every path that configures tokens.

    Every field defaults to ``None``, meaning "not sent", so that an update keeps what is
    stored (Vault's ``d.GetOk``).
    """

    token_ttl: Duration | None = None
    token_max_ttl: Duration | None = None
    token_period: Duration | None = None
    token_explicit_max_ttl: Duration | None = None
    token_num_uses: int | None = None
    token_no_default_policy: bool | None = None
    token_policies: list[str] | None = None
    token_bound_cidrs: list[str] | None = None
    token_type: str | None = None
    # deprecated names, used only when the token_* name is absent
    policies: list[str] | None = None
    ttl: Duration | None = None
    max_ttl: Duration | None = None
    period: Duration | None = None
    num_uses: int | None = None
    bound_cidrs: list[str] | None = None


_LEGACY = {
    "token_policies": "policies",
    "token_ttl": "ttl",
    "token_max_ttl": "max_ttl",
    "token_period": "period",
    "token_num_uses": "num_uses",
    "token_bound_cidrs": "bound_cidrs",
}

# names of the fields TokenFieldArgs adds, so a role's own fields can be told apart
TOKEN_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(TokenFieldArgs))


def normalize_policies(values: Sequence[str]) -> tuple[str, ...]:
    """Vault's policyutil.ParsePolicies: trimmed, lower-cased, de-duplicated, sorted."""
    return tuple(sorted({value.strip().lower() for value in values if value.strip()}))


def _token_type(value: str) -> str:
    lowered = value.strip().lower().replace("_", "-")
    if lowered in _BATCH_TYPES:
        return lowered
    if lowered not in _SERVICE_TYPES:
        raise InvalidRequest(
            'token_type: invalid value, expected "service", "batch", "default", '
            '"default-service" or "default-batch"'
        )
    return lowered or "default"


@dataclass(frozen=True, slots=True)
class TokenParams:
    """The stored token settings of one user or role."""

    ttl: int = 0
    max_ttl: int = 0
    period: int = 0
    explicit_max_ttl: int = 0
    num_uses: int = 0
    no_default_policy: bool = False
    policies: tuple[str, ...] = ()
    bound_cidrs: tuple[str, ...] = ()
    token_type: str = "default"  # noqa: S105 (a token kind)

    def updated(self, args: TokenFieldArgs) -> TokenParams:
        """These settings with every field the request sent applied, validated as Vault does.

        Raises:
            InvalidRequest: a negative count, ttl above max_ttl, a bad CIDR or token type.
        """

        def pick(name: str) -> Any:
            value = getattr(args, name)
            legacy = _LEGACY.get(name)
            if value is None and legacy is not None:
                value = getattr(args, legacy)
            return value

        changes: dict[str, Any] = {}
        if (value := pick("token_ttl")) is not None:
            changes["ttl"] = int(value)
        if (value := pick("token_max_ttl")) is not None:
            changes["max_ttl"] = int(value)
        if (value := pick("token_period")) is not None:
            changes["period"] = int(value)
        if (value := pick("token_explicit_max_ttl")) is not None:
            changes["explicit_max_ttl"] = int(value)
        if (value := pick("token_num_uses")) is not None:
            if value < 0:
                raise InvalidRequest("'token_num_uses' cannot be negative")
            changes["num_uses"] = int(value)
        if (value := pick("token_no_default_policy")) is not None:
            changes["no_default_policy"] = bool(value)
        if (value := pick("token_policies")) is not None:
            changes["policies"] = normalize_policies(value)
        if (value := pick("token_bound_cidrs")) is not None:
            changes["bound_cidrs"] = parse_cidrs(value, "token_bound_cidrs")
        if (value := pick("token_type")) is not None:
            changes["token_type"] = _token_type(value)
        result = dataclasses.replace(self, **changes) if changes else self
        if result.ttl and result.max_ttl and result.ttl > result.max_ttl:
            raise InvalidRequest("'token_ttl' cannot be greater than 'token_max_ttl'")
        if result.token_type in _BATCH_TYPES and result.period:
            raise InvalidRequest(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate "
                "periodic tokens"
            )
        if result.token_type in _BATCH_TYPES and result.num_uses:
            raise InvalidRequest(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate "
                "tokens with limited use count"
            )
        return result

    def to_record(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["policies"] = list(self.policies)
        record["bound_cidrs"] = list(self.bound_cidrs)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> TokenParams:
        if not record:
            return cls()
        return cls(
            ttl=int(record.get("ttl", 0)),
            max_ttl=int(record.get("max_ttl", 0)),
            period=int(record.get("period", 0)),
            explicit_max_ttl=int(record.get("explicit_max_ttl", 0)),
            num_uses=int(record.get("num_uses", 0)),
            no_default_policy=bool(record.get("no_default_policy", False)),
            policies=tuple(record.get("policies", ())),
            bound_cidrs=tuple(record.get("bound_cidrs", ())),
            token_type=str(record.get("token_type", "default")),
        )

    def describe(self) -> dict[str, Any]:
        """The token_* members of a read response (Vault's PopulateTokenData)."""
        return {
            "token_bound_cidrs": list(self.bound_cidrs),
            "token_explicit_max_ttl": self.explicit_max_ttl,
            "token_max_ttl": self.max_ttl,
            "token_no_default_policy": self.no_default_policy,
            "token_num_uses": self.num_uses,
            "token_period": self.period,
            "token_policies": list(self.policies),
            "token_ttl": self.ttl,
            "token_type": self.token_type,
        }

    def check_remote(self, request: Request, bound_cidrs: Sequence[str] | None = None) -> None:
        """Refuse the login unless the caller's address is inside the bound CIDRs.

        Raises:
            PermissionDenied: the address is outside them, or unknown while some are set.
        """
        require_remote_in(self.bound_cidrs if bound_cidrs is None else bound_cidrs, request)

    def auth(
        self,
        *,
        alias_name: str,
        metadata: Mapping[str, str],
        display_name: str = "",
        internal_data: Mapping[str, Any] | None = None,
        bound_cidrs: Sequence[str] | None = None,
    ) -> Auth:
        """The login answer core mints a token from.

        ``internal_data`` (never shown to clients) always carries the token policies as the
        method granted them, so that renewal can refuse once they have changed, and the
        bound CIDRs for core to enforce on every use of the token.
        """
        cidrs = list(self.bound_cidrs if bound_cidrs is None else bound_cidrs)
        internal: dict[str, Any] = {"policies": list(self.policies), "bound_cidrs": cidrs}
        internal.update(internal_data or {})
        return Auth(
            policies=self.policies,
            token_policies=self.policies,
            metadata=dict(metadata),
            display_name=display_name,
            ttl=self.ttl,
            max_ttl=self.max_ttl,
            explicit_max_ttl=self.explicit_max_ttl,
            period=self.period,
            num_uses=self.num_uses,
            no_default_policy=self.no_default_policy,
            renewable=True,
            alias_name=alias_name,
            internal_data=internal,
            # the mount's own token_type decides with it (core, at login)
            token_type=self.token_type or "default",
        )

    def renewal(self) -> Auth:
        """What a renewal hook answers: the current TTL settings (core applies them)."""
        return Auth(
            policies=self.policies,
            token_policies=self.policies,
            ttl=self.ttl,
            max_ttl=self.max_ttl,
            explicit_max_ttl=self.explicit_max_ttl,
            period=self.period,
            no_default_policy=self.no_default_policy,
            renewable=True,
        )


# -- renewal ------------------------------------------------------------------------------------

LOGIN_SECRET_TYPE = "login"  # noqa: S105 (a secret type name)

# Given the renewal request and the token's internal data, the method's current token
# settings for it; raises to refuse the renewal.
RenewCheck = Callable[[Request, Mapping[str, Any]], Awaitable[TokenParams]]


def renewal_secrets(check: RenewCheck) -> dict[str, SecretType]:
    """The ``secrets=`` entry a method's FrameworkBackend takes for token renewal."""

    async def renew(request: Request) -> Response:
        if request.secret is None:
            raise InvalidRequest("no token to renew")
        internal = request.secret.internal_data
        params = await check(request, internal)
        # A token keeps the policies it was issued with; once the user's or role's policies
        # differ, renewal stops and the client must log in again (Vault's userpass and cert
        # do this; we do it for every method so that a policy cut takes effect).
        if params.policies != normalize_policies(internal.get("policies", ())):
            raise InvalidRequest("policies have changed, not renewing")
        return Response(auth=params.renewal())

    async def revoke(request: Request) -> None:
        """Core revokes the token itself; an auth method has nothing to undo."""

    return {LOGIN_SECRET_TYPE: SecretType(revoke=revoke, renew=renew)}
