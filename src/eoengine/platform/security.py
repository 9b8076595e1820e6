"""Secrets: password hashes (argon2), API tokens and session cookies (random, stored as SHA-256), sign-in limits.

Tokens carry 256 random bits, so a plain SHA-256 of them is as safe to store as a slow hash
and can be looked up directly. Passwords are people's, so they get argon2id. No secret is
logged or returned after it is made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from eoengine.errors import Invalid, TooManyRequests
from eoengine.platform.db.models import LoginFailure, utcnow

TOKEN_PREFIX = "eoe_"
MAX_FAILURES = 5
"""Failed sign-ins allowed per user name and per client address within :data:`FAILURE_WINDOW`."""
FAILURE_WINDOW = dt.timedelta(minutes=15)
MIN_PASSWORD = 8

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    """An argon2id hash of a password.

    Args:
        password: The password (at least :data:`MIN_PASSWORD` characters).

    Returns:
        The encoded hash.

    Raises:
        Invalid: The password is too short.

    """
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"the password is shorter than {MIN_PASSWORD} characters", f"choose one of {MIN_PASSWORD} or more")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches a stored hash (time spent is the same when there is no user).

    Args:
        stored: The stored hash (None when the user does not exist).
        password: The password given.

    Returns:
        True on a match.

    """
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_secret(prefix: str = TOKEN_PREFIX) -> str:
    """A new random secret (256 bits, URL-safe), with a prefix that tells what it is."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The SHA-256 (hex) a secret is stored and looked up by."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same(secret: str, stored_digest: str) -> bool:
    """Whether a secret's digest equals a stored one (compared in constant time)."""
    return hmac.compare_digest(digest(secret), stored_digest)


def check_login_allowed(session: Session, keys: list[str]) -> None:
    """Refuse a sign-in while any of its keys (user name, client address) has too many recent failures.

    Args:
        session: A database session.
        keys: The keys of this attempt, e.g. ``["user:ana", "ip:127.0.0.1"]``.

    Raises:
        TooManyRequests: A key reached :data:`MAX_FAILURES` within :data:`FAILURE_WINDOW`.

    """
    since = utcnow() - FAILURE_WINDOW
    for key in keys:
        rows = session.execute(select(func.count(), func.min(LoginFailure.at))
                               .where(LoginFailure.key == key, LoginFailure.at >= since)).one()
        count, first = rows
        if count >= MAX_FAILURES:
            wait = int((first + FAILURE_WINDOW - utcnow()).total_seconds()) + 1 if first else 60
            raise TooManyRequests(f"too many failed sign-ins ({count} in {FAILURE_WINDOW.seconds // 60} minutes)",
                                  f"wait {wait} s and try again, or ask an admin to reset the password",
                                  retry_after=max(wait, 1))


def record_failure(session: Session, keys: list[str]) -> None:
    """Count a failed sign-in against each key, and forget failures older than the window.

    Args:
        session: A database session (committed by the caller).
        keys: The keys of the attempt.

    """
    session.execute(delete(LoginFailure).where(LoginFailure.at < utcnow() - FAILURE_WINDOW))
    session.add_all(LoginFailure(key=key) for key in keys)


def clear_failures(session: Session, keys: list[str]) -> None:
    """Forget the failures of a user name after a successful sign-in (the address's stay counted).

    Args:
        session: A database session.
        keys: The keys to clear.

    """
    session.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys)))
