"""A database secrets engine mount on the dev server, backed by the real PostgreSQL cluster."""

from __future__ import annotations

import os

import hvac
from psycopg import sql

from tests.agent.helpers import unique
from tests.pg import PgCluster


def database_mount(root: hvac.Client, pg: PgCluster, default_ttl: str, max_ttl: str) -> str:
    admin, password = unique("agent_admin").replace("-", "_"), "adm-" + os.urandom(8).hex()
    with pg.admin() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                sql.Identifier(admin), sql.Literal(password)
            )
        )
    mount = unique("db")
    root.sys.enable_secrets_engine("database", path=mount)
    root.secrets.database.configure(
        name="pg",
        plugin_name="postgresql-database-plugin",
        allowed_roles=["app"],
        connection_url=pg.template_url(),
        username=admin,
        password=password,
        mount_point=mount,
    )
    root.secrets.database.create_role(
        name="app",
        db_name="pg",
        creation_statements=[
            "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
            "VALID UNTIL '{{expiration}}';"
        ],
        default_ttl=default_ttl,
        max_ttl=max_ttl,
        mount_point=mount,
    )
    return mount
