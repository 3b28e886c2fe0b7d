"""Identity: entities, aliases, groups, and signed identity tokens (Vault's identity store).

How core wires it (everything below is the whole interface)::

    # at unseal, after the barrier is open (one storage view for both objects)
    view = View(barrier, "sys/identity/")
    identity = IdentityStore(view, clock)
    await identity.load()
    oidc = OIDCProvider(view, clock, identity, issuer_base=lambda: settings.api_addr)

    # the "identity/" mount (a singleton core backend, like "sys/")
    backend = build_identity_backend(
        identity, oidc,
        mount_exists=lambda acc: ...,     # an auth mount has this accessor
        mount_type_of=lambda acc: ...,    # its type ("userpass"...) or None
        mount_path_of=lambda acc: ...,    # its path ("userpass/") or None (display only)
    )

    # login: an auth method answered Auth(alias_name=..., metadata=...)
    entity = await identity.login_entity(
        route.entry.accessor, route.entry.type, auth.alias_name, auth.metadata,
        group_names=<the method's group claims, () if none>,
    )                                     # raises PermissionDenied for a disabled entity
    token entity_id = entity.id

    # every request by a token with entity_id
    if identity.is_disabled(entity_id): raise PermissionDenied()
    names = token.policies + identity.policies_for(entity_id)   # sorted, never "root"
    values = identity.template_values(entity_id)                # for render_policy()
    cache key: (names, entity_id, identity.version)             # version bumps on any write

    # optional: from the sweeper, rotate due signing keys; on auth disable, drop aliases
    await oidc.periodic()
    await identity.drop_mount(accessor)

    # login MFA records (methods, enforcements, entity TOTP secrets, pending logins) are
    # ``identity.mfa`` over the same view; core/mfa.py gates logins with them and the
    # identity/ mount serves identity/mfa/* (departure: TOTP methods only)

Templated policies: for each policy whose text is templated (``policy.is_templated``),
``render_policy(text, identity.template_values(entity_id))`` gives JSON to parse in its
place; ``None`` means "not templated, use as is". Without an entity, pass ``{}``: every
templated rule then grants nothing.

Alias names: :func:`normalise` (strip; lower-case for userpass and LDAP) is the one rule.
Auth methods must pass ``alias_name`` already normalised that way; ``login_entity`` refuses
anything else (400) rather than risk two principals sharing one entity.

Security properties (comments at each check): a login never re-points an alias (only a
write to ``identity/entity-alias``, by ID or by naming its principal, moves it, as Vault);
a disabled entity gets no policies, no template values, no login and no
identity token; identity policies never include ``root``; identity tokens carry a single
``aud`` (the role's unique client ID) and introspection with another client ID fails.
"""

from strongroom.core.identity._backend import build_identity_backend
from strongroom.core.identity._mfa import MFAStore, PendingLogin
from strongroom.core.identity._oidc import NamedKey, OIDCProvider, Role
from strongroom.core.identity._records import (
    CASE_INSENSITIVE_MOUNT_TYPES,
    Entity,
    EntityAlias,
    Group,
    GroupAlias,
    normalise,
)
from strongroom.core.identity._store import IdentityStore

__all__ = [
    "CASE_INSENSITIVE_MOUNT_TYPES",
    "Entity",
    "EntityAlias",
    "Group",
    "GroupAlias",
    "IdentityStore",
    "MFAStore",
    "NamedKey",
    "OIDCProvider",
    "PendingLogin",
    "Role",
    "build_identity_backend",
    "normalise",
]
