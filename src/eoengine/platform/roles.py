"""Who may do what on a project: the one table every route checks.

Roles are ordered: viewer < annotator < reviewer < admin. Each action needs a least role:

========  ==========  ==========================================================
action    least role  what it covers
========  ==========  ==========================================================
read      viewer      see the project, its imagery, datasets, runs, models, maps, jobs, events
annotate  annotator   draw and edit labels
review    reviewer    accept or reject labels; register models and move their aliases
run       reviewer    submit jobs, upload imagery and labels, cancel one's own jobs
manage    admin       change the config, members and roles; cancel anyone's job; delete the project
========  ==========  ==========================================================

A site admin (``users.is_admin``) may do every action on every project, and manage users.
Someone who is not a member gets a 404 for the project (its existence is not revealed); a
member whose role falls short gets a 403 that names the role needed.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["viewer", "annotator", "reviewer", "admin"]
Action = Literal["read", "annotate", "review", "run", "manage"]

ROLES: tuple[Role, ...] = get_args(Role)
"""The roles, least first."""

LEAST_ROLE: dict[Action, Role] = {"read": "viewer", "annotate": "annotator", "review": "reviewer", "run": "reviewer",
                                  "manage": "admin"}
"""The least role each action needs."""


def allows(role: str | None, action: Action, site_admin: bool = False) -> bool:
    """Whether a member with ``role`` may do ``action``.

    Args:
        role: The member's role on the project (None: not a member).
        action: What they ask to do.
        site_admin: Whether they are a site admin (who may do anything).

    Returns:
        True when allowed.

    """
    if site_admin:
        return True
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(LEAST_ROLE[action])  # type: ignore[arg-type]
