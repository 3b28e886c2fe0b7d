"""Strongroom: secrets, encryption and identity, speaking the Vault HTTP API."""

__version__ = "0.1.0"
__all__ = ["__version__"]
