"""What an emulator instance serves: accounts, data sizes, the OAuth application, webhooks.

Everything an emulator answers is derived from an :class:`EmulatorConfig`, so two emulators
built from equal configs serve byte-identical data (tests and benchmarks rely on that).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from poster_pipeline.emulator.entities import SPOT_IDS

__all__ = [
    "DEFAULT_ACCOUNT_NAME",
    "DEFAULT_ACCOUNT_NUMBER",
    "DEFAULT_RETRY_DELAYS",
    "DEFAULT_SIZES",
    "ENTITY_NAMES",
    "EmulatorAccount",
    "EmulatorConfig",
    "parse_account",
]

ENTITY_NAMES: tuple[str, ...] = (
    "suppliers",
    "ingredients",
    "ingredient_categories",
    "product_categories",
    "workshops",
    "storages",
    "products",
    "spots",
    "supplies",
)

DEFAULT_SIZES: Mapping[str, int] = MappingProxyType(
    {
        "suppliers": 12,
        "ingredients": 200,
        "ingredient_categories": 8,
        "product_categories": 10,
        "workshops": 4,
        "storages": 3,
        "products": 120,
        "spots": len(SPOT_IDS),
        "supplies": 30,
    }
)

# Poster re-sends an unanswered hook 15 times over two days (docs/poster-api.md §3.6); the demo
# compresses that into about 15 hours so a stuck receiver is noticed within a session.
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (
    1,
    2,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    14400,
    28800,
)

DEFAULT_ACCOUNT_NAME = "api-demo"
DEFAULT_ACCOUNT_NUMBER = 813932  # the account of Poster's own webhook example (§3.2)

# A Poster account login is a subdomain (docs/poster-api.md §4.2).
_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def _digest(*parts: object) -> str:
    return hashlib.md5(":".join(str(p) for p in parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EmulatorAccount:
    """One emulated Poster account.

    ``token`` has Poster's personal-integration form ``{number}:{32 lowercase hex}``
    (docs/poster-api.md §1.2); :meth:`derive` makes one that depends only on the seed and the name.
    """

    name: str
    number: int
    token: str

    def __post_init__(self) -> None:
        if not _LOGIN.match(self.name):
            raise ValueError(f"account name {self.name!r} is not a Poster login (a subdomain)")
        if self.number <= 0:
            raise ValueError(f"account number must be positive, got {self.number}")
        if not self.token:
            raise ValueError(f"account {self.name!r} needs a token")

    @classmethod
    def derive(cls, name: str, seed: int, number: int | None = None) -> EmulatorAccount:
        """An account whose number (unless given) and token follow from ``seed`` and ``name``."""
        if number is None:
            number = 100_000 + int(_digest("number", name), 16) % 900_000
        return cls(name=name, number=number, token=f"{number}:{_digest('token', seed, name)}")


def parse_account(spec: str, seed: int) -> EmulatorAccount:
    """An account from the CLI's ``NAME`` or ``NAME:NUMBER:TOKEN`` form.

    ``TOKEN`` may itself contain a colon (``NAME:NUMBER:NUMBER:HEX``), so only the first two
    colons split. ``api-demo`` alone gets its usual number 813932.
    """
    name, sep, rest = spec.strip().partition(":")
    if not sep:
        number = DEFAULT_ACCOUNT_NUMBER if name == DEFAULT_ACCOUNT_NAME else None
        return EmulatorAccount.derive(name, seed, number)
    number_text, sep, token = rest.partition(":")
    if not sep or not number_text.isdigit() or not token:
        raise ValueError(f"account {spec!r} is neither NAME nor NAME:NUMBER:TOKEN")
    return EmulatorAccount(name=name, number=int(number_text), token=token)


@dataclass(frozen=True)
class EmulatorConfig:
    """The whole description of an emulator instance.

    ``accounts`` left empty means the single demo account ``api-demo`` (number 813932, token
    derived from ``seed``). ``sizes`` lists objects per entity per account and may name only
    some entities: the others keep :data:`DEFAULT_SIZES`. ``webhook_retry_delays`` are the
    waits before each re-send of an undelivered hook; after the last one the hook is dropped.
    """

    accounts: tuple[EmulatorAccount, ...] = ()
    seed: int = 42
    sizes: Mapping[str, int] = field(default_factory=lambda: DEFAULT_SIZES)
    application_id: str = "demo-app"
    application_secret: str = "demo-secret"
    webhook_url: str | None = None
    webhook_retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    hang_seconds: float = 300.0

    def __post_init__(self) -> None:
        # Frozen dataclass: normalising fields needs object.__setattr__.
        if not self.accounts:
            demo = EmulatorAccount.derive(DEFAULT_ACCOUNT_NAME, self.seed, DEFAULT_ACCOUNT_NUMBER)
            object.__setattr__(self, "accounts", (demo,))
        else:
            object.__setattr__(self, "accounts", tuple(self.accounts))
        for what in ("name", "number", "token"):
            values = [getattr(account, what) for account in self.accounts]
            if len(set(values)) != len(values):
                raise ValueError(f"two accounts share the same {what}")
        unknown = set(self.sizes) - set(ENTITY_NAMES)
        if unknown:
            raise ValueError(
                f"unknown entity size(s) {sorted(unknown)}; known: {', '.join(ENTITY_NAMES)}"
            )
        if any(size < 0 for size in self.sizes.values()):
            raise ValueError("entity sizes must not be negative")
        object.__setattr__(self, "sizes", MappingProxyType({**DEFAULT_SIZES, **self.sizes}))
        object.__setattr__(self, "webhook_retry_delays", tuple(self.webhook_retry_delays))
        if any(delay < 0 for delay in self.webhook_retry_delays):
            raise ValueError("webhook retry delays must not be negative")
