"""The one CIDR-binding check, shared by core (token ``bound_cidrs``) and auth methods
(``secret_id_bound_cidrs``, ``token_bound_cidrs``, ``bound_cidrs``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

__all__ = ["remote_in"]


def remote_in(cidrs: Sequence[str], remote_addr: str) -> bool:
    """Whether ``remote_addr`` lies inside one of ``cidrs`` (an empty list allows everyone).

    An IPv4-mapped IPv6 address (``::ffff:10.0.0.1``, what a dual-stack listener reports for
    an IPv4 client) is compared as the IPv4 address it carries, so ``10.0.0.0/8`` binds it
    whichever socket family accepted it. An unknown or unparsable remote address never
    matches a non-empty list: the check fails closed (Vault: "token bound CIDRs found but
    no connection information available").
    """
    if not cidrs:
        return True
    try:
        address = ipaddress.ip_address(remote_addr.strip())
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for cidr in cidrs:
        network = ipaddress.ip_network(cidr, strict=False)
        if address.version == network.version and address in network:
            return True
    return False
