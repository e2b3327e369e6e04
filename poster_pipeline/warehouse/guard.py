"""The mass-delete guard: a full sync must not wipe an entity because Poster answered badly.

An empty or truncated list from Poster (an outage, a bug, a plan change) would otherwise mark
most rows deleted, and restaurants' purchasing tools would act on that. Two defences:

- a share: refuse when too many rows would go (a pure function of two counts, tested without a
  database; stricter for entities Poster can only list, since nothing else can vouch for them);
- absence is evidence, not proof: before rows that vanished from a list are marked deleted, a
  sample of them is asked for one by one; if Poster still has any, the list was cut short and
  the sync refuses (:class:`AbsenceRefuted`), however few rows would have gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["AbsenceRefuted", "DeletionGuard", "MassDeleteRefused", "sample_evenly"]


class MassDeleteRefused(RuntimeError):
    """A full sync would mark too many rows deleted; nothing was changed."""

    def __init__(
        self, entity: str, account: str, to_delete: int, active: int, guard: DeletionGuard
    ):
        self.entity = entity
        self.account = account
        self.to_delete = to_delete
        self.active = active
        super().__init__(
            f"refused to mark {to_delete} of {active} active {entity} of account {account} as "
            f"deleted ({to_delete / active:.0%}, more than the {guard.max_share:.0%} allowed): "
            "Poster may have answered an empty or truncated list. Nothing was changed. If the "
            "deletions are real, run the sync again with allow_mass_delete: true."
        )


class AbsenceRefuted(MassDeleteRefused):
    """Poster still has rows its list left out: the list was cut short; nothing was changed."""

    def __init__(
        self, entity: str, account: str, to_delete: int, active: int, still: int, sampled: int
    ):
        self.entity, self.account = entity, account
        self.to_delete, self.active = to_delete, active
        self.still, self.sampled = still, sampled
        RuntimeError.__init__(
            self,
            f"refused to mark {to_delete} of {active} active {entity} of account {account} as "
            f"deleted: they are missing from Poster's list, but Poster still has {still} of "
            f"the {sampled} asked for one by one, so the list was cut short. Nothing was "
            "changed. If the deletions are real, run the sync again with "
            "allow_mass_delete: true.",
        )


def sample_evenly(ids: Sequence[int], size: int) -> list[int]:
    """Up to ``size`` of ``ids`` spread over their whole range (a list cut short loses its
    tail, a real deletion can be anywhere: both show in a spread sample)."""
    if size <= 0 or not ids:
        return []
    if len(ids) <= size:
        return list(ids)
    step = (len(ids) - 1) / (size - 1) if size > 1 else 0
    return sorted({ids[round(i * step)] for i in range(size)})


@dataclass(frozen=True)
class DeletionGuard:
    """Refuse when every active row, or more than ``max_share`` of ``min_rows`` or more active
    rows, would go; ask Poster for up to ``sample_size`` of the vanished rows one by one."""

    max_share: float = 0.5
    min_rows: int = 20
    sample_size: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.max_share <= 1:
            raise ValueError("max_share must be between 0 and 1")
        if self.min_rows < 1:
            raise ValueError("min_rows must be at least 1")
        if self.sample_size < 0:
            raise ValueError("sample_size must not be negative")

    def refuses(self, *, active: int, to_delete: int) -> bool:
        """Too large a share of a table of ``min_rows`` or more, or every row of any table
        (an empty answer for 4 workshops is as implausible as one for 400 ingredients)."""
        wipes_out = 0 < active == to_delete
        return wipes_out or (active >= self.min_rows and to_delete > self.max_share * active)
