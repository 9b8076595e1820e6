"""Setting up a server: the database migrated, the first admin made, their first token shown once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select

from eoengine.errors import Conflict
from eoengine.platform.db.migrate import upgrade
from eoengine.platform.db.models import ApiToken, User
from eoengine.platform.events import record
from eoengine.platform.security import digest, hash_password, new_secret
from eoengine.platform.settings import Platform


@dataclass(frozen=True)
class FirstAdmin:
    """The first admin, with the password and the API token shown this once."""

    username: str
    password: str
    token: str


def init_server(platform: Platform, username: str = "admin", password: str | None = None) -> FirstAdmin:
    """Create (or migrate) the database and make the first site admin with a one-time API token.

    Args:
        platform: The server's state (settings and database).
        username: The admin's user name.
        password: Their password (a random one when None; at least 8 characters).

    Returns:
        The admin's name, password and token (only their hashes are stored).

    Raises:
        Conflict: The database has users already.
        Invalid: The password is too short.

    """
    platform.settings.home.mkdir(parents=True, exist_ok=True)
    platform.settings.projects_dir.mkdir(parents=True, exist_ok=True)
    upgrade(platform.db)
    password = password or secrets.token_urlsafe(12)
    with platform.db.write() as session:
        if session.scalar(select(func.count()).select_from(User)):
            raise Conflict("this server has users already", "sign in as an admin, or use another --home / --db")
        user = User(username=username, password_hash=hash_password(password), is_admin=True)
        session.add(user)
        session.flush()
        token = new_secret()
        session.add(ApiToken(user_id=user.id, name="server init", token_hash=digest(token), prefix=token[:8]))
        record(session, "user.create", "user", user.id, actor_id=None, project_id=None,
               data={"username": username, "is_admin": True, "by": "server init"})
    return FirstAdmin(username, password, token)
