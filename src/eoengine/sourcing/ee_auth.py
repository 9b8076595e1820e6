"""Google Earth Engine credentials and initialisation (optional extra ``eoengine[ee]``).

Two kinds of credentials are accepted, as Earth Engine itself does:

- a **service account** key (JSON), from ``--service-account KEY.json`` or the environment
  (``EOENGINE_EE_SERVICE_ACCOUNT``, then ``GOOGLE_APPLICATION_CREDENTIALS`` when it names a
  service-account key); its project is the key's ``project_id`` unless one is given;
- the **user** credentials ``earthengine authenticate`` stored (or application default
  credentials), which need a Cloud project: ``--project``, ``EARTHENGINE_PROJECT`` or
  ``GOOGLE_CLOUD_PROJECT``.

Key material never leaves this module: messages name the key file and the account's e-mail
address, never the key. ``connect`` is the network boundary: ``ee.Initialize`` fetches the
API's algorithm list from Google.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from eoengine.errors import EOError, NotFound, Unavailable, first_line

KEY_FIELDS = ("type", "client_email", "private_key", "token_uri")
PROJECT_ENV = ("EARTHENGINE_PROJECT", "GOOGLE_CLOUD_PROJECT")


def require_ee() -> ModuleType:
    """The ``ee`` module, or a clear error naming the extra to install."""
    try:
        import ee
    except ImportError:
        raise EOError("the Earth Engine provider needs earthengine-api, which is not installed",
                      "pip install 'eoengine[ee]'") from None
    return ee


@dataclass
class EECredentials:
    """Credentials ready for ``ee.Initialize``, the Cloud project, and who they are (for messages)."""

    credentials: Any
    project: str | None
    account: str
    kind: str  # "service-account" or "user"

    def __repr__(self) -> str:  # never show the credential object's contents
        return f"EECredentials(account={self.account!r}, project={self.project!r}, kind={self.kind!r})"


def read_service_account_key(path: Path) -> dict[str, Any]:
    """A service-account key file's fields, checked; errors name the file, never the key."""
    if not path.is_file():
        raise NotFound(f"service-account key {path} does not exist",
                       "download a JSON key for the service account from the Google Cloud console")
    try:
        key = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EOError(f"service-account key {path} is not JSON",
                      "give the JSON key file Google Cloud issued for the service account") from None
    if not isinstance(key, dict):
        raise EOError(f"service-account key {path} is not a JSON object", "give the service account's JSON key file")
    missing = [f for f in KEY_FIELDS if not key.get(f)]
    if missing:
        raise EOError(f"service-account key {path} lacks {', '.join(missing)}",
                      "give the service account's JSON key file (not a user or OAuth client file)")
    if key["type"] != "service_account":
        raise EOError(f"{path} holds '{key['type']}' credentials, not a service-account key",
                      "give a service account's JSON key, or leave --service-account out to use "
                      "'earthengine authenticate' credentials")
    return key


def key_from_environment() -> Path | None:
    """A service-account key file named by the environment, if any."""
    if os.environ.get("EOENGINE_EE_SERVICE_ACCOUNT"):
        return Path(os.environ["EOENGINE_EE_SERVICE_ACCOUNT"])
    adc = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if adc and Path(adc).is_file():
        try:
            if json.loads(Path(adc).read_text()).get("type") == "service_account":
                return Path(adc)
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            return None
    return None


def project_from_environment() -> str | None:
    """The Cloud project the environment names, if any."""
    return next((os.environ[v] for v in PROJECT_ENV if os.environ.get(v)), None)


def load_credentials(service_account: Path | None = None, project: str | None = None) -> EECredentials:
    """Service-account credentials if a key is given (or in the environment), else the user's."""
    ee = require_ee()
    key_path = service_account or key_from_environment()
    project = project or project_from_environment()
    if key_path is not None:
        key = read_service_account_key(key_path)
        try:
            creds = ee.ServiceAccountCredentials(key["client_email"], key_file=str(key_path))
        except ValueError:
            raise EOError(f"the private key in {key_path} cannot be read",
                          "download a new JSON key for the service account") from None
        return EECredentials(creds, project or key.get("project_id"), key["client_email"], "service-account")
    try:
        creds = ee.data.get_persistent_credentials()  # refreshes the stored token: a network call
    except ee.EEException:
        raise EOError("no valid Earth Engine credentials found",
                      "run 'earthengine authenticate', or pass --service-account KEY.json") from None
    except Exception as exc:  # noqa: BLE001 - google-auth transport errors
        raise Unavailable(f"cannot check the stored Earth Engine credentials: {type(exc).__name__}: {first_line(exc)}",
                          "check the network") from None
    project = project or getattr(creds, "quota_project_id", None)
    if not project:
        raise EOError("Earth Engine needs a Google Cloud project for user credentials",
                      f"pass --project PROJECT or set {PROJECT_ENV[0]}")
    return EECredentials(creds, project, "user credentials", "user")


def connect(creds: EECredentials) -> ModuleType:
    """Initialise Earth Engine afresh with ``creds`` (fetches the API's algorithms); return ``ee``."""
    ee = require_ee()
    ee.Reset()  # nothing of an earlier initialisation (other credentials or project) carries over
    try:
        ee.Initialize(creds.credentials, project=creds.project)
    except ee.EEException as exc:
        raise EOError(f"Earth Engine refused {creds.account} (project {creds.project}): {first_line(exc)}",
                      "check that the project has the Earth Engine API enabled and the account is registered") from None
    except Exception as exc:  # noqa: BLE001 - transport and auth errors of google-auth/httplib2 vary
        raise Unavailable(f"cannot reach Earth Engine as {creds.account}: {type(exc).__name__}: {first_line(exc)}",
                          "check the network and that the credentials are valid") from None
    return ee
