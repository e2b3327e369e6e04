"""OAuth ``state`` values: issued by the authorize route, spent once by the callback.

A state ties a callback to an authorization this server started, so a forged or replayed
callback link cannot connect an account. Only the SHA-256 of a state is stored: someone who
can read the table still cannot complete a pending authorization. A state is good for
:data:`STATE_TTL` and for one callback; spending it is a single conditional ``UPDATE``, so two
callbacks racing with the same state (a double click, a replay) cannot both win, even on
different worker processes.

The table is declared on the warehouse's ``metadata`` (migration ``0005``).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.warehouse.schema import oauth_states

__all__ = ["STATE_TTL", "consume_state", "issue_state", "oauth_states", "state_hash"]


#: How long an authorization may take, from the redirect to Poster to the callback.
STATE_TTL = timedelta(minutes=10)
#: Spent and expired states are kept this long after they expire (to tell in a log), then
#: deleted by the next authorization.
_KEEP_EXPIRED = timedelta(days=1)


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def issue_state(engine: Engine, *, now: datetime, ttl: timedelta = STATE_TTL) -> str:
    """A new random state, stored (hashed) until ``now + ttl``. Also deletes long-expired
    states, so the table stays as small as the number of authorizations in progress."""
    state = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(sa.delete(oauth_states).where(oauth_states.c.expires_at < now - _KEEP_EXPIRED))
        conn.execute(
            sa.insert(oauth_states).values(
                state_hash=state_hash(state), created_at=now, expires_at=now + ttl
            )
        )
    return state


def consume_state(engine: Engine, state: str, *, now: datetime) -> bool:
    """Spend ``state``: True once for a known, unexpired, unused state; False otherwise
    (unknown, expired or already used are not told apart: the fix is the same)."""
    t = oauth_states
    with engine.begin() as conn:
        spent = conn.execute(
            sa.update(t)
            .where(t.c.state_hash == state_hash(state), t.c.used_at.is_(None), t.c.expires_at > now)
            .values(used_at=now)
        ).rowcount
    return spent == 1
