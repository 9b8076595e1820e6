"""The Python client of an eoengine platform server (``eoengine server run``).

:class:`Client` speaks the server's API under ``/api/v1`` with an API token and answers the
API's own pydantic models (:mod:`eoengine.platform.schemas`); :meth:`Client.submit` gives a
:class:`Job` to wait for, read the log of, or cancel. Every error is an :mod:`eoengine.errors`
kind: 401 Unauthenticated, 403 Denied, 404 NotFound, 409 Conflict, 400/413/422 Invalid,
429 TooManyRequests, and a 5xx or a server out of reach Unavailable (naming its URL).

Importing it loads neither torch nor rasterio.
"""

from eoengine.client.api import Client, sign_in_token
from eoengine.client.jobs import TERMINAL, Job, WaitTimeout
from eoengine.client.saved import Remote, load_remote, save_remote

__all__ = ["TERMINAL", "Client", "Job", "Remote", "WaitTimeout", "load_remote", "save_remote", "sign_in_token"]
