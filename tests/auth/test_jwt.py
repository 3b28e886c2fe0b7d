"""jwt/oidc driven directly, with real tokens signed by keys made here, and real JWKS and
discovery endpoints served from a thread."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from strongroom.auth import jwt
from strongroom.errors import InvalidRequest, PermissionDenied
from tests.auth.conftest import AuthCaller, MakeAuth
from tests.auth.helpers import (
    b64url,
    issue,
    jwks,
    make_ca,
    public_pem,
    serve,
    sign,
    tls_files,
    unsigned,
)

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})


@pytest.fixture(scope="module")
def attacker_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})


@pytest.fixture(scope="module")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "ec-1"})


def claims(**extra: Any) -> dict[str, Any]:
    base = {"iss": "https://issuer.test", "sub": "user-1", "iat": NOW, "exp": NOW + 300}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
async def jw(make_auth: MakeAuth, rsa_key: RSAKey, ec_key: ECKey) -> AuthCaller:
    caller = await make_auth(jwt.factory, "jwt")
    await caller.write(
        "config",
        {
            "jwt_validation_pubkeys": [public_pem(rsa_key), public_pem(ec_key)],
            "bound_issuer": "https://issuer.test",
        },
    )
    await caller.write(
        "role/dev",
        {
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["vault"],
            "token_policies": "dev",
            "claim_mappings": {"email": "email", "/org/team": "team"},
        },
    )
    return caller


async def login(jw: AuthCaller, token: str, role: str = "dev", **kwargs: Any):
    return await jw.login("login", {"role": role, "jwt": token}, **kwargs)


async def test_login_with_a_signed_token(jw: AuthCaller, rsa_key: RSAKey) -> None:
    await jw.write("role/dev", {"groups_claim": "groups"})
    token = sign(
        claims(aud="vault", email="u@x.test", org={"team": "blue"}, groups=["g1", "g2"]),
        rsa_key,
        kid="rsa-1",
    )
    auth = await login(jw, token)
    assert auth.alias_name == "user-1" and auth.display_name == "user-1"
    assert auth.policies == ("dev",)
    assert auth.metadata == {"role": "dev", "email": "u@x.test", "team": "blue"}
    assert auth.internal_data["groups"] == ["g1", "g2"]
    assert auth.internal_data["role"] == "dev"
    with pytest.raises(InvalidRequest, match="'groups' claim not found"):
        await login(jw, sign(claims(aud="vault"), rsa_key))


async def test_ec_and_eddsa_keys(make_auth: MakeAuth, ec_key: ECKey) -> None:
    ed = OKPKey.generate_key("Ed25519")
    caller = await make_auth(jwt.factory, "jwt")
    await caller.write("config", {"jwt_validation_pubkeys": [public_pem(ec_key), public_pem(ed)]})
    await caller.write("role/r", {"role_type": "jwt", "user_claim": "sub", "bound_subject": "s"})
    for key, alg in ((ec_key, "ES256"), (ed, "EdDSA")):
        auth = await caller.login("login", {"role": "r", "jwt": sign(claims(sub="s"), key, alg)})
        assert auth.alias_name == "s"
    # header members we do not know are tolerated (and never acted on)
    token = sign(claims(sub="s"), ec_key, "ES256")
    _head, rest = token.split(".", 1)
    odd = b64url(b'{"alg":"ES256","typ":"JWT","nonce":"abc"}')
    with pytest.raises(InvalidRequest, match="signature"):  # the signature covers the header
        await caller.login("login", {"role": "r", "jwt": f"{odd}.{rest}"})
    with_nonce = sign(claims(sub="s"), ec_key, "ES256", x5t="abc")
    assert (await caller.login("login", {"role": "r", "jwt": with_nonce})).alias_name == "s"


async def test_aud_string_is_a_one_element_list(jw: AuthCaller, rsa_key: RSAKey) -> None:
    for aud in ("vault", ["vault"], ["other", "vault"]):
        assert (await login(jw, sign(claims(aud=aud), rsa_key))).alias_name == "user-1"
    for aud in ("other", ["other"], [], "vaul", "vault2"):
        with pytest.raises(InvalidRequest, match="aud"):
            await login(jw, sign(claims(aud=aud), rsa_key))
    with pytest.raises(InvalidRequest, match="aud"):
        await login(jw, sign(claims(aud=None), rsa_key))  # bound audiences need an aud


async def test_role_without_bound_audiences_refuses_tokens_with_aud(
    jw: AuthCaller, rsa_key: RSAKey
) -> None:
    await jw.write(
        "role/noaud", {"role_type": "jwt", "user_claim": "sub", "bound_subject": "user-1"}
    )
    assert (await login(jw, sign(claims(), rsa_key), "noaud")).alias_name == "user-1"
    for aud in ("vault", ["vault"], ["a", "b"]):
        with pytest.raises(InvalidRequest, match="no audiences bound to the role"):
            await login(jw, sign(claims(aud=aud), rsa_key), "noaud")


async def test_alg_none_and_hmac_confusion_are_refused(jw: AuthCaller, rsa_key: RSAKey) -> None:
    with pytest.raises(InvalidRequest, match="unexpected algorithm"):
        await login(jw, unsigned(claims(aud="vault")))
    # HS256 "signed" with the RSA public key as the HMAC secret: the classic confusion
    secret = public_pem(rsa_key).encode()
    head = b64url(b'{"alg":"HS256","typ":"JWT"}')
    body = b64url(b'{"iss":"https://issuer.test","sub":"user-1","aud":"vault","exp":1700000300}')
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidRequest, match="unexpected algorithm"):
        await login(jw, f"{head}.{body}.{b64url(mac)}")
    with pytest.raises(InvalidRequest, match="jwt_supported_algs"):
        await jw.write(
            "config", {"jwt_validation_pubkeys": public_pem(rsa_key), "jwt_supported_algs": "HS256"}
        )
    with pytest.raises(InvalidRequest, match="malformed"):
        await login(jw, "a.b.c.d.e")  # JWE shape
    crit = b64url(b'{"alg":"RS256","crit":["x-policy"],"x-policy":"y"}')
    with pytest.raises(InvalidRequest, match="critical"):
        await login(jw, f"{crit}.{body}.{b64url(b'sig')}")


async def test_supported_algs_restrict_what_verifies(
    make_auth: MakeAuth, rsa_key: RSAKey, ec_key: ECKey
) -> None:
    caller = await make_auth(jwt.factory, "jwt")
    await caller.write(
        "config",
        {
            "jwt_validation_pubkeys": [public_pem(rsa_key), public_pem(ec_key)],
            "jwt_supported_algs": ["ES256"],
        },
    )
    await caller.write(
        "role/r", {"role_type": "jwt", "user_claim": "sub", "bound_subject": "user-1"}
    )
    await caller.login("login", {"role": "r", "jwt": sign(claims(), ec_key, "ES256")})
    with pytest.raises(InvalidRequest, match="unexpected algorithm"):
        await caller.login("login", {"role": "r", "jwt": sign(claims(), rsa_key, "RS256")})


async def test_jwk_jku_x5u_x5c_headers_are_never_followed(
    jw: AuthCaller, attacker_key: RSAKey
) -> None:
    ca = make_ca("attacker-ca")
    leaf = issue(ca, "attacker")
    with serve({"/jwks": jwks(attacker_key), "/cert": {}}) as server:
        evil = {
            "jwk": attacker_key.as_dict(private=False),
            "jku": server.url + "/jwks",
            "x5u": server.url + "/cert",
            "x5c": [b64url(leaf.der)],
        }
        for name, value in evil.items():
            token = sign(claims(aud="vault"), attacker_key, kid="rsa-1", **{name: value})
            with pytest.raises(InvalidRequest, match="signature"):
                await login(jw, token)
        assert server.hits == []


async def test_time_claims_and_leeways(jw: AuthCaller, rsa_key: RSAKey) -> None:
    # hashicorp/cap's rules: exp/nbf/iat get the clock-skew leeway (60 s by default); a
    # missing exp is iat (or nbf) + expiration_leeway (150 s by default)
    for good in (
        claims(aud="vault", exp=NOW - 59, iat=NOW - 1000),
        claims(aud="vault", nbf=NOW + 59, iat=None),
        claims(aud="vault", iat=NOW - 200, exp=None),
    ):
        await login(jw, sign(good, rsa_key))
    for bad, reason in (
        (claims(aud="vault", exp=NOW - 61, iat=NOW - 1000), "expired"),
        (claims(aud="vault", iat=NOW - 211, exp=None), "expired"),
        (claims(aud="vault", nbf=NOW + 61, iat=None), "not yet valid"),
        (claims(aud="vault", iat=NOW + 61, exp=NOW + 600), "not yet valid"),  # nbf := iat
        (claims(aud="vault", iat=None, exp=None), "no issued at"),
        (claims(aud="vault", exp="tomorrow"), "invalid exp"),
    ):
        with pytest.raises(InvalidRequest, match=reason):
            await login(jw, sign(bad, rsa_key))
    await jw.write("role/dev", {"expiration_leeway": "-1", "clock_skew_leeway": -1})
    with pytest.raises(InvalidRequest, match="expired"):
        await login(jw, sign(claims(aud="vault", exp=NOW - 1), rsa_key))
    with pytest.raises(InvalidRequest, match="expired"):
        await login(jw, sign(claims(aud="vault", iat=NOW - 1, exp=None), rsa_key))
    read = await jw.read("role/dev")
    assert read is not None and read.data["expiration_leeway"] == -1
    assert read.data["not_before_leeway"] == 150
    with pytest.raises(InvalidRequest, match="clock_skew_leeway"):
        await jw.write("role/dev", {"clock_skew_leeway": -2})


async def test_issuer_subject_and_bound_claims(jw: AuthCaller, rsa_key: RSAKey) -> None:
    with pytest.raises(InvalidRequest, match="issuer"):
        await login(jw, sign(claims(aud="vault", iss="https://evil.test"), rsa_key))
    await jw.write(
        "role/dev",
        {"bound_subject": "user-1", "bound_claims": {"dept": ["eng", "ops"], "/org/level": 3}},
    )
    good = claims(aud="vault", dept="ops", org={"level": 3})
    await login(jw, sign(good, rsa_key))
    await login(jw, sign({**good, "dept": ["sales", "eng"]}, rsa_key))
    for bad in ({**good, "dept": "sales"}, {**good, "org": {"level": 4}}, {**good, "sub": "u2"}):
        with pytest.raises(InvalidRequest):
            await login(jw, sign(bad, rsa_key))
    missing = dict(good)
    del missing["dept"]
    with pytest.raises(InvalidRequest, match="missing"):
        await login(jw, sign(missing, rsa_key))
    await jw.write("role/dev", {"bound_claims_type": "glob", "bound_claims": {"email": "*@x.test"}})
    await login(jw, sign(claims(aud="vault", email="a.b@x.test"), rsa_key))
    with pytest.raises(InvalidRequest):
        await login(jw, sign(claims(aud="vault", email="a@x.test.evil"), rsa_key))


async def test_user_claim_json_pointer_and_default_role(
    make_auth: MakeAuth, rsa_key: RSAKey
) -> None:
    caller = await make_auth(jwt.factory, "jwt")
    await caller.write(
        "config", {"jwt_validation_pubkeys": public_pem(rsa_key), "default_role": "ptr"}
    )
    await caller.write(
        "role/ptr",
        {
            "role_type": "jwt",
            "user_claim": "/https:~1~1vault~1user/name",
            "user_claim_json_pointer": True,
            "bound_subject": "user-1",
        },
    )
    token = sign(claims(**{"https://vault/user": {"name": "alice"}}), rsa_key)
    auth = await caller.login("login", {"jwt": token})
    assert auth.alias_name == "alice" and auth.metadata == {"role": "ptr"}


async def test_role_and_config_validation(jw: AuthCaller, rsa_key: RSAKey, ec_key: ECKey) -> None:
    with pytest.raises(InvalidRequest, match="user claim"):
        await jw.write("role/x", {"role_type": "jwt", "bound_subject": "s"})
    with pytest.raises(InvalidRequest, match="at least one bound constraint"):
        await jw.write("role/x", {"role_type": "jwt", "user_claim": "sub"})
    with pytest.raises(InvalidRequest, match="allowed_redirect_uris"):
        await jw.write("role/x", {"user_claim": "sub"})
    with pytest.raises(InvalidRequest, match="reserved"):
        await jw.write("role/dev", {"claim_mappings": {"x": "role"}})
    with pytest.raises(InvalidRequest, match="verbose_oidc_logging"):
        await jw.write("role/dev", {"verbose_oidc_logging": True})
    with pytest.raises(InvalidRequest, match="exactly one"):
        await jw.write("config", {})
    with pytest.raises(InvalidRequest, match="exactly one"):
        await jw.write(
            "config", {"jwt_validation_pubkeys": public_pem(rsa_key), "jwks_url": "https://x"}
        )
    with pytest.raises(InvalidRequest, match="public keys"):
        await jw.write("config", {"jwt_validation_pubkeys": rsa_key.as_pem(private=True).decode()})
    await jw.write("role/web", {"user_claim": "sub", "allowed_redirect_uris": "https://cb"})
    with pytest.raises(InvalidRequest, match="oidc role_type"):
        await login(jw, sign(claims(), rsa_key), "web")
    with pytest.raises(InvalidRequest, match="could not be found"):
        await login(jw, sign(claims(), rsa_key), "nope")
    read = await jw.read("config")
    assert read is not None and read.data["bound_issuer"] == "https://issuer.test"
    assert "oidc_client_secret" not in read.data
    listed = await jw.list("role/")
    assert listed is not None and listed.data == {"keys": ["dev", "web"]}


async def test_token_bound_cidrs_and_renewal(jw: AuthCaller, rsa_key: RSAKey) -> None:
    await jw.write("role/dev", {"token_bound_cidrs": "10.0.0.0/8", "token_ttl": 60})
    token = sign(claims(aud="vault"), rsa_key)
    with pytest.raises(PermissionDenied):
        await login(jw, token)
    auth = await login(jw, token, remote_addr="10.0.0.2")
    assert (await jw.renew(auth)).ttl == 60
    await jw.delete("role/dev")
    with pytest.raises(InvalidRequest, match="no longer exists"):
        await jw.renew(auth)


async def test_jwks_url_rotation_and_refetch_limits(
    make_auth: MakeAuth, rsa_key: RSAKey, ec_key: ECKey, clock
) -> None:
    rotated = ECKey.generate_key("P-256", parameters={"kid": "ec-2"})
    with serve({"/jwks": jwks(rsa_key)}) as server:
        caller = await make_auth(jwt.factory, "jwt")
        await caller.write("config", {"jwks_url": server.url + "/jwks"})
        await caller.write(
            "role/r", {"role_type": "jwt", "user_claim": "sub", "bound_subject": "user-1"}
        )
        assert server.hits == ["/jwks"]
        await caller.login("login", {"role": "r", "jwt": sign(claims(), rsa_key, kid="rsa-1")})
        assert server.hits == ["/jwks"]  # cached
        # the provider rotates: a token with a new kid triggers one refetch (after 10 s)
        server.routes["/jwks"] = jwks(rsa_key, rotated)
        clock.advance(11)
        token = sign(claims(iat=NOW + 11, exp=NOW + 300), rotated, "ES256", kid="ec-2")
        await caller.login("login", {"role": "r", "jwt": token})
        assert server.hits == ["/jwks", "/jwks"]
        # made-up kids cannot make us hammer the provider
        for i in range(5):
            bogus = sign(claims(iat=NOW + 11), ec_key, "ES256", kid=f"nope-{i}")
            with pytest.raises(InvalidRequest, match="signature"):
                await caller.login("login", {"role": "r", "jwt": bogus})
        assert len(server.hits) == 2
        # the provider goes down: after the hourly refresh fails, cached keys keep working
        server.routes["/jwks"] = lambda *_: (500, {"errors": ["down"]})
        clock.advance(3600)
        later = sign(claims(iat=NOW + 3611, exp=NOW + 4000), rsa_key, kid="rsa-1")
        await caller.login("login", {"role": "r", "jwt": later})
        assert len(server.hits) == 3
        await caller.login("login", {"role": "r", "jwt": later})
        assert len(server.hits) == 3  # and the failed refresh is not retried on every login


async def test_oidc_discovery_over_https(make_auth: MakeAuth, rsa_key: RSAKey) -> None:
    ca = make_ca()
    with tls_files(issue(ca, "idp", server=True)) as files, serve({}, tls=files) as server:
        server.routes["/.well-known/openid-configuration"] = {
            "issuer": server.url,
            "jwks_uri": server.url + "/keys",
        }
        server.routes["/keys"] = jwks(rsa_key)
        caller = await make_auth(jwt.factory, "oidc")
        with pytest.raises(InvalidRequest, match="request failed"):  # not trusted by default
            await caller.write("config", {"oidc_discovery_url": server.url})
        await caller.write(
            "config", {"oidc_discovery_url": server.url, "oidc_discovery_ca_pem": ca.pem}
        )
        await caller.write(
            "role/r", {"role_type": "jwt", "user_claim": "sub", "bound_subject": "user-1"}
        )
        good = sign(claims(iss=server.url), rsa_key)
        assert (await caller.login("login", {"role": "r", "jwt": good})).alias_name == "user-1"
        # with discovery and no bound_issuer, tokens must come from the discovered issuer
        with pytest.raises(InvalidRequest, match="issuer"):
            await caller.login("login", {"role": "r", "jwt": sign(claims(), rsa_key)})
        server.routes["/.well-known/openid-configuration"] = {
            "issuer": "https://elsewhere.test",
            "jwks_uri": server.url + "/keys",
        }
        with pytest.raises(InvalidRequest, match="does not match"):
            await caller.write(
                "config", {"oidc_discovery_url": server.url, "oidc_discovery_ca_pem": ca.pem}
            )
