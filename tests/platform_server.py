"""A real platform server for the tests: a fresh home, migrated database, first admin, uvicorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from conftest import serve_in_thread

from eoengine.platform.admin import FirstAdmin, init_server
from eoengine.platform.app import create_platform_app
from eoengine.platform.settings import Platform, PlatformSettings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ADMIN_PASSWORD = "admin-password-1"


@dataclass
class LiveServer:
    """A running platform: its URL, state and first admin (with their token)."""

    url: str
    platform: Platform
    admin: FirstAdmin
    server: Any

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client for the API with a bearer token (the admin's by default)."""
        return httpx.Client(base_url=f"{self.url}/api/v1", timeout=60,
                            headers={"Authorization": f"Bearer {token or self.admin.token}"})

    def user(self, username: str, password: str = "password-123", is_admin: bool = False) -> str:
        """Make a user (as the admin) and return an API token of theirs."""
        with self.client() as c:
            assert c.post("/users", json={"username": username, "password": password, "is_admin": is_admin}).status_code == 201
        with httpx.Client(base_url=f"{self.url}/api/v1", timeout=60) as anon:
            login = anon.post("/auth/login", json={"username": username, "password": password})
            assert login.status_code == 200, login.text
            made = anon.post("/tokens", json={"name": "tests"}, headers={"X-CSRF-Token": login.json()["csrf_token"]})
            assert made.status_code == 201, made.text
            return str(made.json()["token"])


@contextmanager
def live_platform(home: Path, db_url: str = "", **settings: Any) -> Iterator[LiveServer]:
    """A platform server over a fresh home (and database) until the block ends."""
    config = PlatformSettings(home=home, db_url=db_url, secure_cookies=False, examples=EXAMPLES, **settings)
    platform = Platform(config)
    admin = init_server(platform, "admin", ADMIN_PASSWORD)
    url, server = serve_in_thread(create_platform_app(config, platform))
    try:
        yield LiveServer(url, platform, admin, server)
    finally:
        server.should_exit = True
        platform.db.dispose()
