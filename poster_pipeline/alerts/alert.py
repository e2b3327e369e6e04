"""The alert: what went wrong, where, and what to do; rendered once for every target.

Notifiers differ only in transport, so the wording lives here, and a person reading the
e-mail or the chat message sees the same text: the account, the entity, the error, the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_ERROR_CHARS", "Alert"]

# A Poster error or a stack of step failures can be long; chat targets cut or reject huge
# messages (Slack truncates text after 40 000 characters), and the Dagster UI has the rest.
MAX_ERROR_CHARS = 3000


@dataclass(frozen=True)
class Alert:
    """One notification.

    ``account`` is the Poster login (the partition) or, for a summary over several accounts,
    their list; ``entities`` are catalogue entity names (or asset keys outside the catalogue).
    ``suppressed`` counts the alerts the de-duplication window held back since the last one
    that went out about the same thing; ``details`` are extra lines (a per-account breakdown,
    the command that fixes it).
    """

    subject: str
    account: str | None
    entities: tuple[str, ...]
    error: str
    run_id: str | None = None
    link: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    details: tuple[str, ...] = ()
    suppressed: int = 0

    def text(self) -> str:
        """The message body, plain text (renders as-is in e-mail, Slack and Mattermost)."""
        lines = [self.subject, ""]
        if self.account:
            lines.append(f"Account: {self.account}")
        if self.entities:
            label = "Entity" if len(self.entities) == 1 else "Entities"
            lines.append(f"{label}: {', '.join(self.entities)}")
        if self.run_id:
            lines.append(f"Run: {self.run_id}")
        if self.tags:
            lines.append("Tags: " + ", ".join(f"{k}={v}" for k, v in sorted(self.tags.items())))
        if self.link:
            lines.append(f"Link: {self.link}")
        lines += ["", "Error:", _truncate(self.error)]
        if self.details:
            lines += ["", *self.details]
        if self.suppressed:
            were = "failure was" if self.suppressed == 1 else "failures were"
            lines += [
                "",
                f"{self.suppressed} more {were} not alerted since the previous alert "
                "(de-duplication window).",
            ]
        return "\n".join(lines)

    def fields(self) -> dict[str, Any]:
        """The alert as JSON-ready fields, for webhook receivers that want structure."""
        return {
            "subject": self.subject,
            "account": self.account,
            "entities": list(self.entities),
            "error": _truncate(self.error),
            "run_id": self.run_id,
            "link": self.link,
            "tags": dict(self.tags),
            "suppressed": self.suppressed,
        }


def _truncate(text: str) -> str:
    text = text.strip()
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return text[:MAX_ERROR_CHARS] + f"\n… ({len(text) - MAX_ERROR_CHARS} more characters)"
