"""JWT/OIDC role names are case-insensitive, as in Vault and OpenBao (checked against
``bao server -dev``: ``role/MyRole`` is listed as ``myrole``, read and deleted under any case,
a login's ``role`` and the config's ``default_role`` are lower-cased, and the token's
``role`` metadata says ``myrole``). Over HTTP against a real dev server."""

from __future__ import annotations

import time
import uuid

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.serverproc import ServerProcess


def test_role_names_are_lower_case(dev_server: ServerProcess) -> None:
    key = RSAKey.generate_key(2048)
    mount = "jwt-" + uuid.uuid4().hex[:6]
    role = {"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["x"]}
    now = int(time.time())
    token = jwt.encode(
        {"alg": "RS256"}, {"sub": "u1", "aud": "x", "iat": now, "exp": now + 300}, key
    )
    with dev_server.http(dev_server.root_token) as root, dev_server.http() as anonymous:
        assert root.post(f"/v1/sys/auth/{mount}", json={"type": "jwt"}).status_code == 204
        try:
            config = {
                "jwt_validation_pubkeys": [key.as_pem(private=False).decode()],
                "default_role": "MyRole",
            }
            assert root.post(f"/v1/auth/{mount}/config", json=config).status_code == 204
            assert root.get(f"/v1/auth/{mount}/config").json()["data"]["default_role"] == "myrole"
            assert root.post(f"/v1/auth/{mount}/role/MyRole", json=role).status_code == 204
            listed = root.request("LIST", f"/v1/auth/{mount}/role").json()["data"]["keys"]
            assert listed == ["myrole"]
            for name in ("myrole", "MYROLE", "MyRole"):
                read = root.get(f"/v1/auth/{mount}/role/{name}")
                assert read.status_code == 200 and read.json()["data"]["user_claim"] == "sub"
            # a second write under another case updates the same role
            update = {"bound_audiences": ["x", "y"]}
            assert root.post(f"/v1/auth/{mount}/role/MYROLE", json=update).status_code == 204
            assert root.request("LIST", f"/v1/auth/{mount}/role").json()["data"]["keys"] == [
                "myrole"
            ]
            for body in ({"role": "MyRole", "jwt": token}, {"jwt": token}):
                login = anonymous.post(f"/v1/auth/{mount}/login", json=body)
                assert login.status_code == 200, login.text
                assert login.json()["auth"]["metadata"] == {"role": "myrole"}
            assert root.delete(f"/v1/auth/{mount}/role/MYROLE").status_code == 204
            assert root.get(f"/v1/auth/{mount}/role/myrole").status_code == 404
            gone = anonymous.post(f"/v1/auth/{mount}/login", json={"role": "MyRole", "jwt": token})
            assert gone.status_code == 400
            assert gone.json()["errors"] == ['role "myrole" could not be found']
        finally:
            root.delete(f"/v1/sys/auth/{mount}")
