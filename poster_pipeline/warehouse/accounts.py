"""Connected Poster accounts and their access tokens, encrypted at rest with Fernet.

``POSTER_TOKEN_KEY`` holds one Fernet key, or several separated by commas to rotate keys: the
first encrypts, all decrypt (``MultiFernet``). Tokens are decrypted only when a sync needs one
and never appear in an ``Account``, a log line or an error.

One login is one restaurant: a login keeps the Poster account number it was first connected
with, and :meth:`AccountStore.connect` (OAuth) will not give a second active login the number
of a restaurant already connected, so two partitions never hold one restaurant's data and one
partition never mixes two restaurants'.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import Connection, Engine

from poster_pipeline.poster.login import check_account_login
from poster_pipeline.time_zones import time_zone as check_time_zone
from poster_pipeline.warehouse.schema import accounts

__all__ = [
    "Account",
    "AccountConflict",
    "AccountError",
    "AccountNumberMismatch",
    "AccountNumberTaken",
    "AccountStore",
    "TokenCipher",
    "active_account_names",
    "cipher_for",
    "load_or_create_key",
]

log = logging.getLogger(__name__)


class AccountError(LookupError):
    """An account is unknown, inactive, or its token cannot be decrypted."""


class AccountConflict(ValueError):
    """A token cannot be stored under this login without mixing two restaurants; nothing was
    stored. The message names logins and account numbers, never the token."""


class AccountNumberMismatch(AccountConflict):
    """The login is already connected with another Poster account number."""


class AccountNumberTaken(AccountConflict):
    """The Poster account number is already connected under another active login."""

    def __init__(self, message: str, *, other_account: str) -> None:
        super().__init__(message)
        self.other_account = other_account


# Serialises connect() across processes on PostgreSQL, so two logins cannot both claim one
# account number (pg_advisory_xact_lock takes a 64-bit key; this one reads "poster:a").
_CONNECT_LOCK = 0x706F737465723A61


class TokenCipher:
    """Encrypts and decrypts access tokens with one or more Fernet keys."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ValueError("POSTER_TOKEN_KEY is empty")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except ValueError:
            raise ValueError(
                "POSTER_TOKEN_KEY is not a Fernet key (32 url-safe base64-encoded bytes); make "
                'one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"'
            ) from None

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, encrypted: str) -> str:
        return self._fernet.decrypt(encrypted.encode()).decode()


def load_or_create_key(data_dir: Path) -> str:
    """The demo's key: read from ``data_dir/token.key``, generated there (mode 0600) if absent.

    Production sets ``POSTER_TOKEN_KEY`` instead; losing this file makes stored tokens
    unreadable, so the warning says where it is.
    """
    path = data_dir / "token.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    log.warning(
        "POSTER_TOKEN_KEY is not set: generated a token key in %s. Fine for a demo; in "
        "production set POSTER_TOKEN_KEY and keep it safe.",
        path,
    )
    return key


def cipher_for(token_key: str | None, data_dir: Path) -> TokenCipher:
    """The cipher of ``POSTER_TOKEN_KEY``, or of the demo key in ``data_dir`` when it is unset."""
    return TokenCipher(token_key or load_or_create_key(data_dir))


@dataclass(frozen=True)
class Account:
    """A connected account, without its token."""

    account: str
    account_number: str | None
    auth_method: str
    is_active: bool
    connected_at: datetime
    time_zone: str | None


def active_account_names(conn: Connection) -> list[str]:
    """The logins of the active accounts, in order; no token is read."""
    query = sa.select(accounts.c.account).where(accounts.c.is_active).order_by(accounts.c.account)
    return list(conn.execute(query).scalars())


class AccountStore:
    """The ``accounts`` table.

    ``cipher`` is needed only to store or read a token: a store opened without it lists and
    manages accounts, so a caller that only needs names (the account sensor, the receiver's
    cache) never loads ``POSTER_TOKEN_KEY`` nor creates the demo key file.
    """

    def __init__(self, engine: Engine, cipher: TokenCipher | None = None) -> None:
        self._engine = engine
        self._tokens = cipher

    @property
    def _cipher(self) -> TokenCipher:
        if self._tokens is None:
            raise TypeError("this AccountStore was opened without a TokenCipher: tokens need one")
        return self._tokens

    def active_names(self) -> list[str]:
        """The logins of the active accounts, in order."""
        with self._engine.connect() as conn:
            return active_account_names(conn)

    def add(
        self,
        account: str,
        token: str,
        *,
        now: datetime,
        auth_method: str = "personal",
        account_number: str | None = None,
        time_zone: str | None = None,
    ) -> Account:
        """Connect ``account``, or replace its token and reactivate it if it was connected.

        ``time_zone`` (IANA, e.g. ``Europe/Kyiv``; an unknown one is a ``ValueError``) sets
        the restaurant's zone, whose 03:00 is its nightly sync; ``None`` keeps the stored one
        (none for a new account: ``POSTER_TIMEZONE`` applies).
        """
        check_account_login(account)
        if not token or not token.strip():
            raise ValueError("the access token is empty")
        if time_zone is not None:
            check_time_zone(time_zone)
        token = token.strip()
        if account_number is None and ":" in token:
            account_number = token.split(":", 1)[0]  # tokens are "{account_number}:{hex}"
        values = {
            "account_number": account_number,
            "token_encrypted": self._cipher.encrypt(token),
            "auth_method": auth_method,
            "is_active": True,
            "updated_at": now,
        }
        if time_zone is not None:
            values["time_zone"] = time_zone
        with self._engine.begin() as conn:
            known = conn.execute(
                sa.select(accounts.c.account_number).where(accounts.c.account == account)
            ).scalar_one_or_none()
            if known and account_number and known != account_number:
                raise _number_mismatch(account, known, account_number)
            updated = conn.execute(
                sa.update(accounts).where(accounts.c.account == account).values(**values)
            ).rowcount
            if not updated:
                conn.execute(
                    sa.insert(accounts).values(account=account, connected_at=now, **values)
                )
        return self.get(account)

    def connect(self, account: str, token: str, *, account_number: str, now: datetime) -> Account:
        """Store the OAuth token Poster issued for ``account`` (account number
        ``account_number``, from Poster's answer): connect the login, or give a connected one
        its new token and reactivate it.

        A reconnection keeps what the login already had: its account number (a different one
        is refused, :class:`AccountNumberMismatch`), its time zone and its ``connected_at``.
        A number connected under another *active* login is refused
        (:class:`AccountNumberTaken`); under an inactive one it is not, so a restaurant can
        move to a new login once the old one is deactivated. A token that does not start with
        ``account_number`` is a ``ValueError``. Nothing is stored when this raises.
        """
        check_account_login(account)
        token = (token or "").strip()
        if not token:
            raise ValueError("the access token is empty")
        if not account_number or token.partition(":")[0] != account_number:
            raise ValueError(f"the token is not one of Poster account number {account_number}")
        encrypted = self._cipher.encrypt(token)
        with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_CONNECT_LOCK)))
            known = conn.execute(
                sa.select(accounts.c.account_number).where(accounts.c.account == account)
            ).one_or_none()
            if known is not None and known.account_number not in (None, account_number):
                raise _number_mismatch(account, known.account_number, account_number)
            other = conn.execute(
                sa.select(accounts.c.account)
                .where(
                    accounts.c.account_number == account_number,
                    accounts.c.account != account,
                    accounts.c.is_active,
                )
                .order_by(accounts.c.account)
                .limit(1)
            ).scalar_one_or_none()
            if other is not None:
                raise AccountNumberTaken(
                    f"Poster account number {account_number} is already connected as {other}: "
                    f"refusing to sync one restaurant under two logins. Deactivate {other} "
                    f"first to connect it as {account}.",
                    other_account=other,
                )
            values = {
                "account_number": account_number,
                "token_encrypted": encrypted,
                "auth_method": "oauth",
                "is_active": True,
                "updated_at": now,
            }
            if known is None:
                conn.execute(
                    sa.insert(accounts).values(account=account, connected_at=now, **values)
                )
            else:
                conn.execute(
                    sa.update(accounts).where(accounts.c.account == account).values(**values)
                )
        return self.get(account)

    def get(self, account: str) -> Account:
        with self._engine.connect() as conn:
            row = conn.execute(_ACCOUNT_COLUMNS.where(accounts.c.account == account)).one_or_none()
        if row is None:
            raise AccountError(f"no account {account!r} is connected")
        return Account(**row._asdict())

    def list(self, *, active_only: bool = False) -> list[Account]:
        query = _ACCOUNT_COLUMNS.order_by(accounts.c.account)
        if active_only:
            query = query.where(accounts.c.is_active)
        with self._engine.connect() as conn:
            return [Account(**row._asdict()) for row in conn.execute(query)]

    def token(self, account: str) -> str:
        """The decrypted token of an active account."""
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(accounts.c.token_encrypted, accounts.c.is_active).where(
                    accounts.c.account == account
                )
            ).one_or_none()
        if row is None:
            raise AccountError(f"no account {account!r} is connected")
        if not row.is_active:
            raise AccountError(f"account {account!r} is deactivated")
        try:
            return self._cipher.decrypt(row.token_encrypted)
        except InvalidToken:
            raise AccountError(
                f"cannot decrypt the token of account {account!r}: POSTER_TOKEN_KEY does not "
                "match the key it was stored with"
            ) from None

    def deactivate(self, account: str, *, now: datetime) -> None:
        with self._engine.begin() as conn:
            done = conn.execute(
                sa.update(accounts)
                .where(accounts.c.account == account)
                .values(is_active=False, updated_at=now)
            ).rowcount
        if not done:
            raise AccountError(f"no account {account!r} is connected")


def _number_mismatch(account: str, known: str, offered: str) -> AccountNumberMismatch:
    return AccountNumberMismatch(
        f"this token is for Poster account number {offered}, but {account} is account number "
        f"{known}: refusing to mix two restaurants' data"
    )


_ACCOUNT_COLUMNS = sa.select(
    accounts.c.account,
    accounts.c.account_number,
    accounts.c.auth_method,
    accounts.c.is_active,
    accounts.c.connected_at,
    accounts.c.time_zone,
)
