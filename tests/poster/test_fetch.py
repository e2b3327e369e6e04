"""Re-fetching named objects: each object has its own outcome, and a not-found is confirmed
before it counts (against the emulator, with faults)."""

from __future__ import annotations

import requests

from poster_pipeline.catalogue import entity
from poster_pipeline.poster.fetch import fetch_objects

INGREDIENTS, SUPPLIERS = entity("ingredients"), entity("suppliers")


def add_fault(control: requests.Session, emulator, **fault) -> None:
    control.post(f"{emulator.url}/control/faults", json=fault).raise_for_status()


def ids_of(control: requests.Session, emulator, spec) -> list[int]:
    listed = control.get(f"{emulator.url}/control/api-demo/{spec.name}").json()
    return [int(o[spec.key]) for o in listed]


def test_single_fetches_give_each_object_its_own_outcome(client, emulator, control):
    first, second, third = ids_of(control, emulator, INGREDIENTS)[:3]
    unknown = 9_999_999
    add_fault(control, emulator, method="menu.getIngredient", kind="latency", seconds=0, times=1)
    add_fault(control, emulator, method="menu.getIngredient", kind="error", code=20, times=1)
    fetched = fetch_objects(client, INGREDIENTS, [first, second, third, unknown])
    assert fetched.strategy == "single"
    assert sorted(r.id for r in fetched.records) == [first, third]
    assert list(fetched.failed) == [second]
    assert fetched.missing == {unknown}  # asked twice: confirmed


def test_a_spurious_not_found_is_overruled_by_the_second_answer(client, emulator, control):
    [first] = ids_of(control, emulator, INGREDIENTS)[:1]
    add_fault(control, emulator, method="menu.getIngredient", kind="response_false", times=1)
    fetched = fetch_objects(client, INGREDIENTS, [first])
    assert [r.id for r in fetched.records] == [first] and not fetched.missing


def test_a_not_found_that_persists_without_a_removed_event_is_gone_after_two_answers(
    client, emulator, control
):
    add_fault(control, emulator, method="menu.getIngredient", kind="response_false")
    requests.delete(f"{emulator.url}/control/calls", timeout=5)
    fetched = fetch_objects(client, INGREDIENTS, [1])
    assert fetched.missing == {1}
    assert client.stats.calls["menu.getIngredient"] == 2


def test_a_removed_event_makes_one_not_found_enough(client, emulator, control):
    add_fault(control, emulator, method="menu.getIngredient", kind="response_false")
    fetched = fetch_objects(client, INGREDIENTS, [1], removed=[1])
    assert fetched.missing == {1}
    assert client.stats.calls["menu.getIngredient"] == 1


def test_objects_missing_from_a_list_are_confirmed_one_by_one(client, emulator, control):
    ids = ids_of(control, emulator, INGREDIENTS)
    # The list is cut to its first half: the named objects of the second half are still live.
    add_fault(control, emulator, method="menu.getIngredients", kind="truncate", times=1)
    named = [ids[0], ids[-1], *ids[1:3]]
    fetched = fetch_objects(client, INGREDIENTS, named, single_fetch_limit=2)
    assert fetched.strategy == "list"
    assert sorted(r.id for r in fetched.records) == sorted(named)
    assert not fetched.missing and not fetched.failed


def test_a_list_missing_too_many_named_objects_is_not_trusted(client, emulator, control):
    ids = ids_of(control, emulator, INGREDIENTS)
    add_fault(control, emulator, method="menu.getIngredients", kind="truncate", keep=1, times=1)
    named = ids[1:6]
    fetched = fetch_objects(client, INGREDIENTS, named, single_fetch_limit=2)
    assert not fetched.missing  # no row is marked deleted on the list's word alone
    assert sorted(fetched.failed) == sorted(named)


def test_suppliers_have_only_the_list_as_evidence(client, emulator, control):
    ids = ids_of(control, emulator, SUPPLIERS)
    fetched = fetch_objects(client, SUPPLIERS, [ids[0], 9_999_999])
    assert fetched.strategy == "list"
    assert [r.id for r in fetched.records] == [ids[0]] and fetched.missing == {9_999_999}
