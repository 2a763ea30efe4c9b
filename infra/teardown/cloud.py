"""Ask GCP whether a pending create's resource exists: one GET on the API that owns it,
with the gcloud account's access token (infra/gcp/credentials.py). 200 is yes, 404 is no; anything
else is an answer we cannot act on, said as such."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import requests

from infra.gcp.credentials import GcloudError, access_token
from infra.teardown.pending import CloudResource

API_URLS = {
    "container": "https://container.googleapis.com",
    "artifactregistry": "https://artifactregistry.googleapis.com",
    "iam": "https://iam.googleapis.com",
}
TIMEOUT_SECONDS = (10.0, 30.0)


def exists(
    resource: CloudResource,
    token: str,
    *,
    api_urls: Mapping[str, str] = API_URLS,
    session: requests.Session | None = None,
) -> bool | str:
    """True or False, or why GCP could not tell."""
    http = session or requests.Session()
    url = api_urls[resource.api].rstrip("/") + resource.path
    try:
        response = http.get(
            url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_SECONDS
        )
    except (requests.ConnectionError, requests.Timeout) as error:
        return f"{resource.api}.googleapis.com did not answer ({type(error).__name__})"
    if response.status_code == 200:
        return True
    if response.status_code == 404:
        return False
    return (
        f"{resource.api}.googleapis.com answered HTTP {response.status_code}: {response.text[:200]}"
    )


def gcp_exists(say: Callable[[str], None]) -> Callable[[CloudResource], bool | str]:
    """Look resources up with the gcloud account's token, read once when first needed."""
    token: list[str] = []

    def check(resource: CloudResource) -> bool | str:
        if not token:
            try:
                token.append(access_token("check by hand with the commands below"))
            except GcloudError as error:
                return str(error)
        answer = exists(resource, token[0])
        found = answer if isinstance(answer, str) else ("exists" if answer else "does not exist")
        say(f"   {resource.kind} {resource.name}: {found}")
        return answer

    return check
