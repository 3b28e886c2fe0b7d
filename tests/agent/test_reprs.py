"""The agent's objects never show a token or a secret value in ``repr()``, and the package
exports what it documents."""

from __future__ import annotations

import strongroom.agent
from strongroom.agent.auth import LoginResult
from strongroom.agent.config import MethodConfig, SinkConfig, parse_agent_config
from strongroom.agent.proxy import _Entry
from strongroom.agent.sink import FileSink
from strongroom.agent.template import Dependency, SecretValue
from strongroom.agent.templates import _Fetched

TOKEN = "hvs.TOPSECRETtokenVALUE000"
VALUE = "correct-horse-battery-staple"


def test_exports() -> None:
    assert strongroom.agent.__all__ == [
        "AgentConfig",
        "AgentConfigError",
        "load_agent_config",
        "parse_agent_config",
    ]


def test_reprs_hide_secrets() -> None:
    secret = SecretValue({"lease_id": "db/creds/x/1", "data": {"password": VALUE}})
    objects = [
        LoginResult(TOKEN, "accessor", 60, True),
        secret,
        Dependency("secret", "pki/issue/web", (("common_name", VALUE),)),
        MethodConfig("approle", "auth/approle", {"secret_id": VALUE}),
        SinkConfig("file", "/tmp/t", aad=VALUE),
        FileSink(SinkConfig("file", "/tmp/t", aad=VALUE), {"AAD": VALUE}),
        _Fetched(secret, f'[{{"password": "{VALUE}"}}]', 0.0),
        _Entry(200, [("x", VALUE)], VALUE.encode(), 0.0, "db/creds/x", TOKEN, "l", TOKEN, "a"),
    ]
    config = parse_agent_config(
        'auto_auth {\n method "token_file" {\n config = { token_file_path = "/t" }\n }\n}\n'
        f'template {{\n contents = "{VALUE}"\n destination = "/d"\n}}\n',
        "hcl",
        "/a.hcl",
    )
    objects.append(config.templates[0])
    for obj in objects:
        text = repr(obj)
        assert TOKEN not in text and VALUE not in text, text
