"""OAuth ``state`` values: issued by the authorize route, spent once by the callback, and
bound to the browser that started the authorization.

A state ties a callback to an authorization this server started, so a forged or replayed
callback link cannot connect an account. A state alone is not enough: a link is easy to pass
on, and a callback link opened in someone else's browser would connect whatever restaurant
approved it (login CSRF). So each authorization also gets a *browser key*, a second random
value that only travels in an ``HttpOnly`` cookie of the browser that started it; the callback
must present both, and a state presented with another browser's key (or none) is refused.

Only SHA-256 digests are stored: someone who can read the table still cannot complete a
pending authorization. A state is good for :data:`STATE_TTL` and for one callback, accepted or
refused; spending it is a single conditional ``UPDATE``, so two callbacks racing with the same
state (a double click, a replay) cannot both win, even on different worker processes.

The table is declared on the warehouse's ``metadata`` (migrations ``0005`` and ``0006``).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from poster_pipeline.warehouse.schema import oauth_states

__all__ = [
    "STATE_TTL",
    "IssuedState",
    "StateCheck",
    "consume_state",
    "issue_state",
    "oauth_states",
    "state_hash",
]


#: How long an authorization may take, from the redirect to Poster to the callback.
STATE_TTL = timedelta(minutes=10)
#: Spent and expired states are kept this long after they expire (to tell in a log), then
#: deleted by the next authorization.
_KEEP_EXPIRED = timedelta(days=1)


def state_hash(value: str) -> str:
    """The hex SHA-256 stored for a state or a browser key."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedState:
    """A new authorization: ``state`` goes to Poster in the authorize URL, ``browser_key``
    into the starting browser's cookie. ``repr`` shows neither."""

    state: str = field(repr=False)
    browser_key: str = field(repr=False)


class StateCheck(enum.Enum):
    """What a callback's state and browser key are worth."""

    #: A pending state of this browser: the authorization may go on.
    ACCEPTED = "accepted"
    #: Unknown, expired or already spent (not told apart: the fix is the same, start again).
    UNKNOWN = "unknown"
    #: A pending state, but of another browser (or the cookie is missing); now spent.
    OTHER_BROWSER = "other_browser"


def issue_state(engine: Engine, *, now: datetime, ttl: timedelta = STATE_TTL) -> IssuedState:
    """A new random state and browser key, stored (hashed) until ``now + ttl``. Also deletes
    long-expired states, so the table stays as small as the number of authorizations in
    progress."""
    issued = IssuedState(state=secrets.token_urlsafe(32), browser_key=secrets.token_urlsafe(32))
    with engine.begin() as conn:
        conn.execute(sa.delete(oauth_states).where(oauth_states.c.expires_at < now - _KEEP_EXPIRED))
        conn.execute(
            sa.insert(oauth_states).values(
                state_hash=state_hash(issued.state),
                browser_hash=state_hash(issued.browser_key),
                created_at=now,
                expires_at=now + ttl,
            )
        )
    return issued


def consume_state(
    engine: Engine, *, state: str | None, browser_key: str | None, now: datetime
) -> StateCheck:
    """Spend the pending state of a callback and say whether this browser started it.

    With ``state`` (the callback's query), that state is spent whatever the browser, so a link
    opened in the wrong browser is dead for everyone; it is :attr:`StateCheck.ACCEPTED` only
    with the browser key it was issued with. Without ``state`` (Poster's documentation does not
    promise to send it back), the pending state of ``browser_key`` is spent, if there is one.
    """
    t = oauth_states
    pending = sa.and_(t.c.used_at.is_(None), t.c.expires_at > now)
    if state:
        where = sa.and_(pending, t.c.state_hash == state_hash(state))
    elif browser_key:
        where = sa.and_(pending, t.c.browser_hash == state_hash(browser_key))
    else:
        return StateCheck.UNKNOWN
    with engine.begin() as conn:
        spent = conn.execute(
            sa.update(t).where(where).values(used_at=now).returning(t.c.browser_hash)
        ).all()
    if len(spent) != 1:
        return StateCheck.UNKNOWN
    if browser_key is None or not hmac.compare_digest(
        spent[0].browser_hash, state_hash(browser_key)
    ):
        return StateCheck.OTHER_BROWSER
    return StateCheck.ACCEPTED
