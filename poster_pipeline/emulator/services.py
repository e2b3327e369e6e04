"""The parts of one running emulator, built from its config and shared by its routes."""

from __future__ import annotations

from dataclasses import dataclass

from poster_pipeline.emulator.calls import CallCounter
from poster_pipeline.emulator.config import EmulatorConfig
from poster_pipeline.emulator.entities import METHODS
from poster_pipeline.emulator.faults import FaultBook
from poster_pipeline.emulator.oauth import OAuthService
from poster_pipeline.emulator.state import Change, EmulatorState
from poster_pipeline.emulator.webhook_sender import Delivery, WebhookSender, webhook_payload

__all__ = ["Services"]


@dataclass
class Services:
    """Data, faults, call counts, webhooks and OAuth of one emulator instance."""

    config: EmulatorConfig
    state: EmulatorState
    faults: FaultBook
    calls: CallCounter
    webhooks: WebhookSender
    oauth: OAuthService

    @classmethod
    def build(cls, config: EmulatorConfig) -> Services:
        state = EmulatorState(config)
        return cls(
            config=config,
            state=state,
            faults=FaultBook({name: is_list for name, (_, is_list) in METHODS.items()}),
            calls=CallCounter(),
            webhooks=WebhookSender(config.webhook_url, config.webhook_retry_delays),
            oauth=OAuthService(config, state),
        )

    def announce(self, change: Change) -> Delivery | None:
        """Queue the webhook Poster sends for ``change``; None for entities without one
        (suppliers, docs/poster-api.md §3.4)."""
        hook_object = change.spec.hook_object(change.record)
        if hook_object is None:
            return None
        payload = webhook_payload(
            change.account,
            object=hook_object,
            object_id=change.record[change.spec.id_field],
            action=change.action,
            secret=self.config.application_secret,
        )
        return self.webhooks.enqueue(change.account.name, payload)
