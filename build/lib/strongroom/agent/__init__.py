"""``strongroom agent``: Vault Agent's job (auto-auth, token sinks, templates, exec mode, an
API proxy with a cache) done as a pure client of Strongroom's HTTP API, reading Vault Agent's
configuration files; and ``strongroom injector``, the Kubernetes webhook that adds the agent to
pods.

Nothing here imports the server, core, engines or storage (import-linter holds it to that).
"""

from __future__ import annotations

from .config import AgentConfig, AgentConfigError, load_agent_config, parse_agent_config

__all__ = ["AgentConfig", "AgentConfigError", "load_agent_config", "parse_agent_config"]
