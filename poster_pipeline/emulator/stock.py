"""Stock (остатки): the balance of every ingredient on every storage, as
``storage.getStorageLeftovers`` answers it (docs/poster-api.md §2.7).

Stock is not an entity of its own in Poster: it is a figure per (storage, ingredient), so it
is kept here as balances beside the entity stores, and its answer is built from them and the
ingredients. At start each live ingredient's ``ingredient_left`` is split over the live
storages (the first one takes the remainder, so negative totals stay negative somewhere); a
change through the control API moves one balance and the ingredient's total with it, and
sends the ``stock`` webhook with ``data`` as Poster documents it (§3.3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Balances", "initial_balances", "leftover_rows", "prime_cost"]

#: storage_id → ingredient_id → balance; an ingredient without an entry holds 0 there.
Balances = dict[int, dict[int, float]]


def prime_cost(ingredient_id: int) -> int:
    """A stable unit cost in kopecks per ingredient (the emulator keeps no purchase history)."""
    return 100 + (ingredient_id * 7919) % 4900


def initial_balances(
    ingredients: Iterable[Mapping[str, Any]], storages: Iterable[Mapping[str, Any]]
) -> Balances:
    live_storages = [s["storage_id"] for s in storages if not s["delete"]]
    balances: Balances = {s: {} for s in live_storages}
    if not live_storages:
        return balances
    first, others = live_storages[0], live_storages[1:]
    share = len(live_storages)
    for ingredient in ingredients:
        if ingredient["delete"]:
            continue
        total = float(ingredient["ingredient_left"])
        each = round(total / share, 3)
        for storage in others:
            balances[storage][ingredient["ingredient_id"]] = each
        balances[first][ingredient["ingredient_id"]] = round(total - each * len(others), 3)
    return balances


def leftover_rows(
    ingredients: Iterable[Mapping[str, Any]],
    balances: Balances,
    *,
    storage_id: int | None,
    zero_leftovers: bool,
) -> list[dict[str, Any]]:
    """The canonical rows of one answer: one storage's (``storage_id``) or the sum over all,
    live ingredients in id order, zero balances only when asked for."""
    rows = []
    totals: dict[int, float] = {}
    for held in balances.values():
        for ingredient_id, left in held.items():
            totals[ingredient_id] = totals.get(ingredient_id, 0.0) + left
    for ingredient in ingredients:
        if ingredient["delete"]:
            continue
        ingredient_id = ingredient["ingredient_id"]
        total = round(totals.get(ingredient_id, 0.0), 3)
        here = total if storage_id is None else balances.get(storage_id, {}).get(ingredient_id, 0.0)
        if not zero_leftovers and here == 0:
            continue
        cost = prime_cost(ingredient_id)
        row: dict[str, Any] = {
            "ingredient_id": ingredient_id,
            "ingredient_name": ingredient["ingredient_name"],
            "ingredient_left": total,
            "limit_value": ingredient["limit_value"],
            "ingredient_unit": ingredient["ingredient_unit"],
            "ingredients_type": ingredient["ingredients_type"],
        }
        if storage_id is not None:
            row["storage_ingredient_left"] = here
        worth = max(0, round(here * cost))
        row.update(
            storage_ingredient_sum=worth,
            storage_ingredient_sum_netto=round(worth / 1.2),
            prime_cost=cost,
            prime_cost_netto=round(cost / 1.2),
            hidden=ingredient["hidden"],
        )
        rows.append(row)
    return rows
