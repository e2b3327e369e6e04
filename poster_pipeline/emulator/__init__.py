"""A faithful emulator of Poster's Web API, OAuth and webhooks, for tests and the demo.

It serves every synced entity, stock and supplies included, with Poster's wire quirks
(docs/poster-api.md §1–§4) from deterministic seeded data, and adds a ``/control`` API to change
that data (sending the webhooks Poster would), switch faults on and count calls. See
docs/emulator.md.
"""

from poster_pipeline.emulator.app import build_app
from poster_pipeline.emulator.cli import emulator_command
from poster_pipeline.emulator.config import EmulatorAccount, EmulatorConfig, parse_account
from poster_pipeline.emulator.runner import RunningEmulator, start_in_thread

__all__ = [
    "EmulatorAccount",
    "EmulatorConfig",
    "RunningEmulator",
    "build_app",
    "emulator_command",
    "parse_account",
    "start_in_thread",
]
