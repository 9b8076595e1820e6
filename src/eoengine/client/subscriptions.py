"""Subscriptions from the client: create, list, show, pause, resume, cancel, run now, and their runs and deliveries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eoengine.client.http import Http, segment
from eoengine.client.jobs import Job
from eoengine.platform.schemas import DeliveryOut, JobOut, SubscriptionOut, SubscriptionRunOut
from eoengine.subscriptions.spec import SubscriptionSpec
from eoengine.subscriptions.state import DryRun


class Subscribing:
    """The subscription routes of a project (mixed into :class:`~eoengine.client.Client`).

    Every method raises the :mod:`eoengine.errors` kind of the server's answer: Invalid for a spec
    the server refuses (an unknown model or alias is named), Conflict for a change the state does
    not allow (the fix says which do), Denied for a role that may not.
    """

    http: Http

    def _subs(self, slug: str) -> str:
        return f"/projects/{segment(slug)}/subscriptions"

    def create_subscription(self, slug: str, spec: SubscriptionSpec | Mapping[str, Any]) -> SubscriptionOut:
        """Create a subscription of a project (reviewers and admins).

        Args:
            slug: The project.
            spec: The spec (``eoengine.subscriptions.spec``) or its JSON mapping; ``source`` left out (or
                ``project``) is the project's imagery catalog.

        Returns:
            The subscription, scheduled.

        Raises:
            Invalid: A bad spec, or a model, run or path the project does not have.
            Conflict: The project has a subscription of that name.

        """
        body = spec.model_dump(mode="json") if isinstance(spec, SubscriptionSpec) else dict(spec)
        return self.http.send("POST", self._subs(slug), SubscriptionOut, {"spec": body})

    def dry_run_subscription(self, slug: str, spec: SubscriptionSpec | Mapping[str, Any] | int) -> DryRun:
        """What a run now would do (periods, scenes, tiles, compute and storage estimates); nothing is stored or run.

        Args:
            slug: The project.
            spec: A spec not stored (checked as on creation), or a subscription's id (from its stored state).

        Returns:
            The dry run.

        """
        if isinstance(spec, int):
            return self.http.send("POST", f"{self._subs(slug)}/{spec}/dry-run", DryRun)
        body = spec.model_dump(mode="json") if isinstance(spec, SubscriptionSpec) else dict(spec)
        return self.http.send("POST", f"{self._subs(slug)}/dry-run", DryRun, {"spec": body})

    def subscriptions(self, slug: str, state: str | None = None) -> list[SubscriptionOut]:
        """A project's subscriptions, newest first; only those in ``state`` if given."""
        return self.http.get(self._subs(slug), list[SubscriptionOut], state=state)

    def subscription(self, slug: str, sub_id: int) -> SubscriptionOut:
        """One subscription: spec (secrets masked), state, next due time, run count, active job."""
        return self.http.get(f"{self._subs(slug)}/{int(sub_id)}", SubscriptionOut)

    def change_subscription(self, slug: str, sub_id: int, action: str) -> SubscriptionOut:
        """Pause, resume or cancel a subscription.

        Args:
            slug: The project.
            sub_id: The subscription.
            action: ``pause``, ``resume`` or ``cancel``.

        Returns:
            The subscription in its new state.

        Raises:
            Conflict: The state does not allow the action.
            Denied: Cancelling another's subscription without being a project admin.

        """
        return self.http.send("POST", f"{self._subs(slug)}/{int(sub_id)}/{segment(action)}", SubscriptionOut)

    def run_subscription(self, slug: str, sub_id: int) -> Job:
        """Run an active subscription now: its run job, to wait for.

        Raises:
            Conflict: It is not active, or a run job of it is queued or running.

        """
        return Job(self.http, self.http.send("POST", f"{self._subs(slug)}/{int(sub_id)}/run", JobOut))

    def subscription_runs(self, slug: str, sub_id: int, limit: int = 100) -> list[SubscriptionRunOut]:
        """A subscription's recorded runs, newest first."""
        return self.http.get(f"{self._subs(slug)}/{int(sub_id)}/runs", list[SubscriptionRunOut], limit=limit)

    def subscription_deliveries(self, slug: str, sub_id: int, limit: int = 100) -> list[DeliveryOut]:
        """The webhook deliveries of a subscription's latest ``limit`` runs, newest first."""
        return self.http.get(f"{self._subs(slug)}/{int(sub_id)}/deliveries", list[DeliveryOut], limit=limit)
