"""The mass-delete guard: a full sync must not wipe an entity because Poster answered badly.

An empty or truncated list from Poster (an outage, a bug, a plan change) would otherwise mark
most rows deleted, and restaurants' purchasing tools would act on that. The decision is a pure
function of two counts, so it is tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeletionGuard", "MassDeleteRefused"]


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


@dataclass(frozen=True)
class DeletionGuard:
    """Refuse when every active row, or more than ``max_share`` of ``min_rows`` or more active
    rows, would go."""

    max_share: float = 0.5
    min_rows: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.max_share <= 1:
            raise ValueError("max_share must be between 0 and 1")
        if self.min_rows < 1:
            raise ValueError("min_rows must be at least 1")

    def refuses(self, *, active: int, to_delete: int) -> bool:
        """Too large a share of a table of ``min_rows`` or more, or every row of any table
        (an empty answer for 4 workshops is as implausible as one for 400 ingredients)."""
        wipes_out = 0 < active == to_delete
        return wipes_out or (active >= self.min_rows and to_delete > self.max_share * active)
