"""schemathesis over the platform's whole OpenAPI document, as the site admin with a bearer token.

Three passes over every operation: invalid input (negative mode), valid input (positive mode),
and valid input aimed at real objects (the path parameters name an existing project, member,
user, token, job, dataset version and chip, map, scene, run and model, so the handlers' bodies
run and not only their 404s). No answer may be a 5xx,
and every answer the document describes must match its schema. Generation is deterministic
(``derandomize``) and small per operation, to stay within a minute.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from platform_server import EXAMPLES, LiveServer, api_routes, browsable_project, live_platform
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from eoengine.platform.db.models import ApiToken
from eoengine.platform.security import digest, new_secret

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
MAX_EXAMPLES = 6
EXCLUDED: dict[str, str] = {}
"""Operations left out, each with the reason ("METHOD PATH": why). None so far."""
HIDDEN = {"HEAD /api/v1/projects/{slug}/datasets/{ref}/files/{path}": "the GET route's handler, for a file's size"}
"""API routes left out of the document (so not fuzzed), each with the reason."""
LAST = ("DELETE /api/v1/projects/{slug}",)
"""Run after the others in the real-object pass: deleting the project ends the others' objects."""


@dataclass
class Admin:
    """The site admin's bearer token; a new one is minted when a generated request revokes it."""

    live: LiveServer
    token: str
    token_id: int

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    def mint(self) -> None:
        """A fresh token of the first admin, written to the database directly (their password may have changed)."""
        secret = new_secret()
        with self.live.platform.db.write() as s:
            row = ApiToken(user_id=1, name="schemathesis", token_hash=digest(secret), prefix=secret[:8])
            s.add(row)
            s.flush()
            self.token, self.token_id = secret, row.id

    def after(self, label: str, case: Any, status: int) -> None:
        """Mint a new token when this request revoked the current one."""
        if label == "DELETE /api/v1/tokens/{token_id}" and status == 204 and \
                str(case.path_parameters.get("token_id")) == str(self.token_id):
            self.mint()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    with live_platform(tmp_path_factory.mktemp("fuzz") / "home", data_roots=(EXAMPLES,)) as server:
        real = browsable_project(server, "nc")
        server.user("vera")
        with server.client() as c:
            assert c.post("/projects/nc/members", json={"username": "vera", "role": "viewer"}).status_code == 201
            vera = next(u for u in c.get("/users").json() if u["username"] == "vera")
            spare = c.post("/tokens", json={"name": "spare"}).json()
        yield server, real | {"username": "vera", "user_id": vera["id"], "token_id": spare["id"]}


def _label(op: Any) -> str:
    return f"{op.method.upper()} {op.path}"


def _has_input(op: Any) -> bool:
    """Whether an operation takes anything a negative case could get wrong (a parameter or a body)."""
    return bool(len(op.path_parameters) or len(op.query) or len(op.headers) or len(op.body))


def _fuzz(op: Any, admin: Admin, mode: Any, fixed: dict[str, Any], failures: list[str], calls: dict[str, int]) -> None:
    label = _label(op)
    names = {p.name for p in op.path_parameters}
    strategy = op.as_strategy(mode, path_parameters={k: v for k, v in fixed.items() if k in names} or None)

    @given(strategy)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call(headers=admin.headers, timeout=60)
        calls[label] = calls.get(label, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            failures.append(f"{label} [{mode.value}] {case.formatted_path}: {response.status_code} "
                            f"{response.content[:200]!r}: {[f.title for f in group.exceptions]}")
        admin.after(label, case, response.status_code)

    try:
        check()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        calls.setdefault(f"{label} (nothing to make invalid)", 0)  # e.g. a free-text path parameter alone


def test_no_operation_fails_or_breaks_its_schema(live: tuple[LiveServer, dict[str, Any]]) -> None:
    server, real = live
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = sorted((op.ok() for op in schema.get_all_operations()), key=lambda op: (_label(op) in LAST, _label(op)))
    labels = {_label(op) for op in operations}
    assert set(EXCLUDED) <= labels, "EXCLUDED names operations the document does not have"
    admin = Admin(server, "", 0)
    admin.mint()
    failures: list[str] = []
    calls: dict[str, int] = {}
    for mode, fixed in ((GenerationMode.NEGATIVE, {}), (GenerationMode.POSITIVE, {}), (GenerationMode.POSITIVE, real)):
        for op in operations:
            if _label(op) not in EXCLUDED and (mode is GenerationMode.POSITIVE or _has_input(op)):
                _fuzz(op, admin, mode, fixed, failures, calls)
    assert not failures, "\n".join(failures)
    called = {label for label, n in calls.items() if n}
    assert called == labels - set(EXCLUDED) and len(labels) >= 20, calls
    assert sum(calls.values()) > MAX_EXAMPLES * len(called), calls  # operations without input give a case or two


def test_the_document_describes_every_api_route(live: tuple[LiveServer, dict[str, Any]]) -> None:
    server, _ = live
    doc = server.app.openapi()
    documented = {f"{m.upper()} {p}" for p, item in doc["paths"].items() for m in item}
    routes = {re.sub(r"{(\w+):\w+}", r"{\1}", r) for r in api_routes(server.app)}  # {path:path} is {path} there
    assert documented == routes - set(HIDDEN) and set(HIDDEN) <= routes  # no route hidden unless named in HIDDEN
