"""The core: seal state, mounts, routing, tokens, policies, the request road."""
