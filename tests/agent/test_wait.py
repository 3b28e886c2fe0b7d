"""Templates' ``wait { min max }`` (consul-template's quiescence): a burst of secret changes
is written once, ``min`` after the last change, or ``max`` after the first if the changes
never stop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import hvac
import pytest

from strongroom.agent.config import AgentConfigError, Wait, parse_agent_config
from tests.agent.conftest import StartAgent
from tests.agent.helpers import read, unique, wait_for

BASE = """
vault { address = "{addr}" }
auto_auth {
  method "token_file" {
    config = { token_file_path = "{dir}/in-token" }
  }
}
"""


@pytest.fixture
def kv2(root: hvac.Client, tmp_path: Path) -> str:
    token = root.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    (tmp_path / "in-token").write_text(token)
    mount = unique("kv")
    root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    return mount


class Watcher:
    """Every distinct content a file takes, seen by polling it every 10 ms."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            text = read(self.path)
            if text and (not self.seen or self.seen[-1][1] != text):
                self.seen.append((time.monotonic(), text))
            time.sleep(0.01)

    def values(self) -> list[str]:
        return [text for _, text in self.seen]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_burst_of_changes_rendered_once_after_min(
    start_agent: StartAgent, root: hvac.Client, kv2: str, tmp_path: Path
) -> None:
    root.secrets.kv.v2.create_or_update_secret("app", {"v": "1"}, mount_point=kv2)
    agent = start_agent(
        BASE
        + """
template_config { static_secret_render_interval = "1s" }
template {
  contents = "{{ with secret \\"{kv}/data/app\\" }}{{ .Data.data.v }}{{ end }}"
  destination = "{dir}/out.txt"
  command = "echo ran >> {dir}/ran.log"
  wait {
    min = "3s"
    max = "30s"
  }
}
""",
        kv=kv2,
    )
    out = tmp_path / "out.txt"
    watcher = Watcher(out)
    try:
        wait_for(lambda: read(out) == "1", timeout=30, what=agent.log)
        for value in ("2", "3", "4"):  # three changes well inside min
            root.secrets.kv.v2.create_or_update_secret("app", {"v": value}, mount_point=kv2)
            time.sleep(0.3)
        last_write = time.monotonic() - 0.3
        wait_for(lambda: read(out) == "4", timeout=30, what=agent.log)
        time.sleep(1.5)  # a second render, if there were one, would come within this
    finally:
        watcher.stop()
    assert watcher.values() == ["1", "4"]  # 2 and 3 were never written
    assert read(tmp_path / "ran.log").splitlines() == ["ran", "ran"]
    assert agent.log().count(f"rendered {out}") == 2
    # written no sooner than min after the last change
    assert watcher.seen[-1][0] - last_write >= 3.0


def test_changes_that_never_stop_are_written_at_max(
    start_agent: StartAgent, root: hvac.Client, kv2: str, tmp_path: Path
) -> None:
    root.secrets.kv.v2.create_or_update_secret("app", {"v": "0"}, mount_point=kv2)
    # the wait comes from template_config here (the template has none of its own)
    agent = start_agent(
        BASE
        + """
template_config {
  static_secret_render_interval = "1s"
  wait {
    min = "3s"
    max = "4s"
  }
}
template {
  contents = "{{ with secret \\"{kv}/data/app\\" }}{{ .Data.data.v }}{{ end }}"
  destination = "{dir}/out.txt"
}
""",
        kv=kv2,
    )
    out = tmp_path / "out.txt"
    wait_for(lambda: read(out) == "0", timeout=30, what=agent.log)
    # a change every 0.25 s for 8 s: never quiet for min (3 s), so only max (4 s) writes
    seen_while_changing: set[str] = set()
    for number in range(1, 33):
        root.secrets.kv.v2.create_or_update_secret("app", {"v": str(number)}, mount_point=kv2)
        seen_while_changing.add(read(out))
        time.sleep(0.25)
    final = "32"
    assert seen_while_changing - {"0", final}, "nothing was written while the changes went on"
    wait_for(lambda: read(out) == final, timeout=30, what=agent.log)


def test_wait_forms_in_the_config() -> None:
    head = 'auto_auth {\n  method "token_file" {\n    config = { token_file_path = "/t" }\n  }\n}\n'

    def template(wait: str) -> str:
        return head + f'template {{\n  contents = "x"\n  destination = "/tmp/x"\n  {wait}\n}}\n'

    assert parse_agent_config(template('wait { min = "2s" max = "10s" }')).templates[
        0
    ].wait == Wait(2, 10)
    # only a min: max is four times it (consul-template's rule)
    assert parse_agent_config(template('wait { min = "5s" }')).templates[0].wait == Wait(5, 20)
    assert parse_agent_config(template('wait = "1s:3s"')).templates[0].wait == Wait(1, 3)
    assert parse_agent_config(template('wait { min = "0s" }')).templates[0].wait is None
    settings = parse_agent_config(
        template("") + 'template_config {\n  wait {\n    min = "1s"\n  }\n}\n'
    ).template_settings
    assert settings.wait == Wait(1, 4)
    with pytest.raises(AgentConfigError, match=r":9: wait max must not be less than min"):
        parse_agent_config(template('wait { min = "10s" max = "2s" }'))
    with pytest.raises(AgentConfigError, match=r'unknown key "mni"'):
        parse_agent_config(template('wait { mni = "10s" }'))
