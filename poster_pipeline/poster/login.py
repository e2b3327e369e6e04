"""Poster account logins (``api-demo``): the account's subdomain, and our partition key."""

from __future__ import annotations

import re

__all__ = ["check_account_login"]

_ACCOUNT_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def check_account_login(name: str) -> str:
    """``name`` if it can be a Poster login (a DNS label); ``ValueError`` otherwise.

    Logins end up in host names (the OAuth token endpoint) and Dagster partition keys, so
    anything else is refused before it gets there.
    """
    if not isinstance(name, str) or not _ACCOUNT_LOGIN.match(name):
        raise ValueError(f"not a Poster account login (letters, digits and dashes): {name!r}")
    return name
