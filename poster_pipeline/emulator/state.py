"""The emulator's mutable world: accounts, tokens, every entity's records, list caches.

Only the event loop touches it (all handlers are ``async def``), so it needs no locks.
Stored records are never mutated in place: a change stores a new dict, so a serialised list
cached from the old dicts stays consistent until it is invalidated.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from poster_pipeline.emulator.coerce import FieldError, new_record, patched_record
from poster_pipeline.emulator.config import EmulatorAccount, EmulatorConfig
from poster_pipeline.emulator.data import generate_account
from poster_pipeline.emulator.entities import ENTITIES, LEFTOVERS, EntitySpec, Field, Kind
from poster_pipeline.emulator.stock import Balances, initial_balances, leftover_rows
from poster_pipeline.emulator.wire import dumps, list_row

__all__ = [
    "Change",
    "Conflict",
    "EmulatorState",
    "EntityStore",
    "ListCache",
    "NotFound",
    "StockChange",
]

Record = dict[str, Any]
Action = Literal["added", "changed", "removed"]


class NotFound(LookupError):
    """No such account, entity or object: the control API answers 404."""


class Conflict(ValueError):
    """The object is not in a state the operation applies to: the control API answers 409."""


@dataclass
class EntityStore:
    """One entity of one account: every record ever created, by id in id order.

    Removal is the ``delete`` flag for soft-deleting entities and membership of ``removed``
    for the others (those vanish from Poster's list but can be restored).
    """

    spec: EntitySpec
    records: dict[int, Record]
    removed: set[int] = field(default_factory=set)

    def is_removed(self, object_id: int) -> bool:
        if self.spec.soft_delete:
            return bool(self.records[object_id]["delete"])
        return object_id in self.removed

    def listed(self) -> Iterator[Record]:
        """The records Poster's list method shows (soft-deleted ones included)."""
        if self.spec.soft_delete or not self.removed:
            return iter(self.records.values())
        return (r for i, r in self.records.items() if i not in self.removed)


@dataclass
class ListCache:
    """A list method's answer, serialised once: ``fragments[i]`` is ``records[i]`` as JSON.

    Keeping one fragment per row lets filters (``menu.getProducts?type=``) and the
    ``truncate`` fault answer from the cache without re-serialising anything.
    """

    records: list[Record]
    fragments: list[bytes]
    _body: bytes | None = None

    @property
    def body(self) -> bytes:
        if self._body is None:
            self._body = envelope(self.fragments)
        return self._body


def envelope(fragments: list[bytes]) -> bytes:
    """``{"response":[...]}`` around already serialised rows."""
    return b'{"response":[' + b",".join(fragments) + b"]}"


@dataclass(frozen=True)
class Change:
    """A change made through the control API, for the webhook Poster would send about it."""

    account: EmulatorAccount
    spec: EntitySpec
    record: Record
    action: Action


@dataclass(frozen=True)
class StockChange:
    """A balance moved through the control API, for the ``stock`` webhook (§3.3)."""

    account: EmulatorAccount
    storage_id: int
    ingredient_id: int
    relative: float
    absolute: float


class EmulatorState:
    """Accounts and their data, generated from the config at construction."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.accounts: dict[str, EmulatorAccount] = {a.name: a for a in config.accounts}
        self._tokens: dict[str, str] = {a.token: a.name for a in config.accounts}
        self._stores: dict[str, dict[str, EntityStore]] = {}
        for account in config.accounts:
            generated = generate_account(account, config.seed, config.sizes)
            self._stores[account.name] = {
                name: EntityStore(
                    ENTITIES[name],
                    {r[ENTITIES[name].id_field]: r for r in rows.records},
                    rows.removed,
                )
                for name, rows in generated.items()
            }
        self._lists: dict[tuple[str, str], ListCache] = {}
        self._balances: dict[str, Balances] = {
            name: initial_balances(
                stores["ingredients"].records.values(), stores["storages"].records.values()
            )
            for name, stores in self._stores.items()
        }
        self._leftovers: dict[tuple[str, int | None, bool], ListCache] = {}

    # -- accounts and tokens ------------------------------------------------------------------

    def account(self, name: str) -> EmulatorAccount:
        try:
            return self.accounts[name]
        except KeyError:
            raise NotFound(f"no account {name!r}; known: {', '.join(self.accounts)}") from None

    def account_for_token(self, token: str) -> EmulatorAccount | None:
        name = self._tokens.get(token)
        return None if name is None else self.accounts[name]

    def issue_token(self, account: EmulatorAccount) -> str:
        """A new token for ``account`` (an application install gets its own, §4.3)."""
        token = f"{account.number}:{secrets.token_hex(16)}"
        self._tokens[token] = account.name
        return token

    def tokens_of(self, account: EmulatorAccount) -> list[str]:
        return [token for token, name in self._tokens.items() if name == account.name]

    # -- reads --------------------------------------------------------------------------------

    def store(self, account: str, entity: str) -> EntityStore:
        stores = self._stores.get(account)
        if stores is None:
            raise NotFound(f"no account {account!r}; known: {', '.join(self._stores)}")
        if entity not in stores:
            raise NotFound(f"no entity {entity!r}; known: {', '.join(stores)}")
        return stores[entity]

    def record(self, account: str, entity: str, object_id: int) -> Record:
        store = self.store(account, entity)
        if object_id not in store.records:
            raise NotFound(f"no {entity} object with id {object_id} in account {account!r}")
        return store.records[object_id]

    def listing(self, account: str, entity: str) -> ListCache:
        """The list method's rows, serialised on first use after a change."""
        cached = self._lists.get((account, entity))
        if cached is None:
            store = self.store(account, entity)
            records = list(store.listed())
            cached = ListCache(records, [dumps(list_row(store.spec, r)) for r in records])
            self._lists[(account, entity)] = cached
        return cached

    def leftovers(self, account: str, storage_id: int | None, *, zero: bool) -> ListCache:
        """``storage.getStorageLeftovers``' rows: of one storage, or summed over all (None);
        :class:`NotFound` for a storage that never existed."""
        if storage_id is not None and storage_id not in self.store(account, "storages").records:
            raise NotFound(f"no storage {storage_id} in account {account!r}")
        key = (account, storage_id, zero)
        cached = self._leftovers.get(key)
        if cached is None:
            records = leftover_rows(
                self.store(account, "ingredients").records.values(),
                self._balances[account],
                storage_id=storage_id,
                zero_leftovers=zero,
            )
            cached = ListCache(records, [dumps(list_row(LEFTOVERS, r)) for r in records])
            self._leftovers[key] = cached
        return cached

    def balances(self, account: str, storage_id: int) -> dict[int, float]:
        """Every live ingredient's balance on the storage (0 where it holds none)."""
        rows = self.leftovers(account, storage_id, zero=True).records
        return {r["ingredient_id"]: r["storage_ingredient_left"] for r in rows}

    # -- changes ------------------------------------------------------------------------------

    def move_stock(
        self,
        account: str,
        storage_id: int,
        ingredient_id: int,
        *,
        relative: float | None = None,
        absolute: float | None = None,
    ) -> StockChange:
        """Set a balance (``absolute``) or move it (``relative``); the ingredient's total
        ``ingredient_left`` moves with it."""
        if (relative is None) == (absolute is None):
            raise FieldError("give exactly one of value_relative and value_absolute")
        storages = self.store(account, "storages")
        if storage_id not in storages.records or storages.is_removed(storage_id):
            raise NotFound(f"no live storage {storage_id} in account {account!r}")
        ingredients = self.store(account, "ingredients")
        ingredient = self.record(account, "ingredients", ingredient_id)
        if ingredients.is_removed(ingredient_id):
            raise Conflict(f"ingredient {ingredient_id} is removed")
        held = self._balances[account].setdefault(storage_id, {})
        before = held.get(ingredient_id, 0.0)
        after = round(before + relative if relative is not None else float(absolute or 0), 3)
        held[ingredient_id] = after
        total = round(float(ingredient["ingredient_left"]) + after - before, 3)
        ingredients.records[ingredient_id] = {**ingredient, "ingredient_left": total}
        self._lists.pop((account, "ingredients"), None)
        self._forget_leftovers(account)
        return StockChange(
            self.accounts[account], storage_id, ingredient_id, round(after - before, 3), after
        )

    def _forget_leftovers(self, account: str) -> None:
        for key in [k for k in self._leftovers if k[0] == account]:
            del self._leftovers[key]

    def create(self, account: str, entity: str, body: Any) -> Change:
        store = self.store(account, entity)
        record = new_record(store.spec, body, max(store.records, default=0) + 1)
        self._check_references(account, store.spec, record, record.keys())
        return self._save(account, store, record, "added")

    def update(self, account: str, entity: str, object_id: int, body: Any) -> Change:
        store = self.store(account, entity)
        record = self.record(account, entity, object_id)
        if store.is_removed(object_id):
            raise Conflict(f"{entity} {object_id} is removed; restore it first")
        changed = patched_record(store.spec, record, body)
        # Only the fields being set: an untouched reference may point at a since-removed object.
        self._check_references(account, store.spec, changed, body.keys())
        return self._save(account, store, changed, "changed")

    def remove(self, account: str, entity: str, object_id: int) -> Change:
        store = self.store(account, entity)
        record = self.record(account, entity, object_id)
        if store.is_removed(object_id):
            raise Conflict(f"{entity} {object_id} is already removed")
        if store.spec.soft_delete:
            record = {**record, "delete": 1}
        else:
            store.removed.add(object_id)
        return self._save(account, store, record, "removed")

    def restore(self, account: str, entity: str, object_id: int) -> Change:
        """Undo a removal; announced as ``added`` (Poster's recoverProduct has no own action)."""
        store = self.store(account, entity)
        record = self.record(account, entity, object_id)
        if not store.is_removed(object_id):
            raise Conflict(f"{entity} {object_id} is not removed")
        if store.spec.soft_delete:
            record = {**record, "delete": 0}
        else:
            store.removed.discard(object_id)
        return self._save(account, store, record, "added")

    def _save(self, account: str, store: EntityStore, record: Record, action: Action) -> Change:
        record = self._with_lookups(account, store.spec, record)
        store.records[record[store.spec.id_field]] = record
        self._lists.pop((account, store.spec.name), None)
        if store.spec.name in ("ingredients", "storages"):
            self._forget_leftovers(account)
        self._cascade_lookups(account, store.spec, record)
        return Change(self.accounts[account], store.spec, record, action)

    def _check_references(
        self, account: str, spec: EntitySpec, record: Record, names: Iterable[str]
    ) -> None:
        """Refuse ids that point at no live object (0 means none), in rows too."""
        for name in names:
            f = spec.get_field(name)
            assert f is not None  # the record was validated against the spec
            if f.references == spec.name and record[name] == record[spec.id_field]:
                raise FieldError(f"{name}: an object cannot reference itself")
            self._check_value(account, f, record[name], name)

    def _check_value(self, account: str, f: Field, value: Any, where: str) -> None:
        if f.kind is Kind.ROWS:
            for index, row in enumerate(value):
                for sub in f.rows:
                    self._check_value(account, sub, row[sub.name], f"{where}[{index}].{sub.name}")
        elif f.references is not None and value:
            store = self.store(account, f.references)
            if value not in store.records or store.is_removed(value):
                raise FieldError(f"{where}: no live {f.references} object with id {value}")

    def _with_lookups(self, account: str, spec: EntitySpec, record: Record) -> Record:
        """``record`` with its derived copies (a product's ``category_name``) refreshed."""
        for f in spec.fields:
            if f.lookup is None or f.lookup.via not in record:
                continue
            target = self.store(account, f.lookup.entity).records.get(record[f.lookup.via])
            value = "" if target is None else target[f.lookup.field]
            if record.get(f.name) != value:
                record = {**record, f.name: value}
        return record

    def _cascade_lookups(self, account: str, changed: EntitySpec, record: Record) -> None:
        """Refresh copies of ``record``'s fields held by other entities (no webhook: Poster
        announces the category change, not every product that shows its name)."""
        changed_id = record[changed.id_field]
        for store in self._stores[account].values():
            lookups = [
                f.lookup
                for f in store.spec.fields
                if f.lookup is not None and f.lookup.entity == changed.name
            ]
            for lookup in lookups:
                for object_id, other in list(store.records.items()):
                    if other.get(lookup.via) != changed_id:
                        continue
                    refreshed = self._with_lookups(account, store.spec, other)
                    if refreshed is not other:
                        store.records[object_id] = refreshed
                        self._lists.pop((account, store.spec.name), None)
