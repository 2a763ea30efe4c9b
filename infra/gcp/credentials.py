"""The user's Google credentials for the few direct API calls this project makes (prices,
quota): a short-lived access token from the gcloud CLI, which GKE's auth plugin needs
anyway. Never a key file."""

from __future__ import annotations

import subprocess


class GcloudError(RuntimeError):
    """No token; the message says what to do."""


def access_token(otherwise: str) -> str:
    """`gcloud auth print-access-token`; `otherwise` names the way around it (an option)."""
    try:
        result = subprocess.run(
            ["gcloud", "auth", "print-access-token"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    except FileNotFoundError:
        raise GcloudError(
            f"gcloud is not installed: install the Google Cloud CLI, or {otherwise}."
        ) from None
    except subprocess.CalledProcessError as error:
        raise GcloudError(
            f"gcloud auth print-access-token failed: {error.stderr.strip()[:300]}. Run "
            f"`gcloud auth login`, or {otherwise}."
        ) from None
    return result.stdout.strip()
