"""tests/pg.py: a missing PostgreSQL installation fails the session loudly, never skips."""

from __future__ import annotations

import pytest

import tests.pg as pg
from strongroom.engines.database._postgres import ConnectionSettings, _Masker
from strongroom.engines.database._records import DbConfig, StaticRole


def test_missing_binaries_fail_with_an_install_hint(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(pg.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(pg.shutil, "which", lambda name: None)
    with pytest.raises(pg.PgUnavailable, match="install the `postgresql` package"):
        pg.find_bindir()
    with pytest.raises(pytest.fail.Exception, match="install the `postgresql` package"):
        next(pg.pg_cluster_fixture())


def test_the_cluster_helper(pg_cluster: pg.PgCluster):
    assert pg_cluster.can_login(pg_cluster.superuser, pg_cluster.superuser_password)
    assert not pg_cluster.can_login(pg_cluster.superuser, "wrong")
    assert pg_cluster.query("SELECT 1") == [(1,)]
    assert "{{username}}:{{password}}@127.0.0.1" in pg_cluster.template_url()


def test_records_and_errors_never_show_passwords():
    url = "postgresql://admin:Literal-Secret-1@db/x"
    config = DbConfig(name="c", plugin_name="p", connection_url=url, password="Root-Secret-2")
    role = StaticRole(name="s", db_name="c", username="u", rotation_period=60, password="St-3x")
    for text in (repr(config), repr(role), repr(config.settings())):
        assert "Secret" not in text and "St-3x" not in text
    masker = _Masker(ConnectionSettings(url, password="Root-Secret-2"))
    message = 'bad "Literal-Secret-1" and Root-Secret-2 in postgresql://admin:Literal-Secret-1@db/x'
    assert "Secret" not in masker.mask(message)
