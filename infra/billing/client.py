"""Read SKUs from the Cloud Billing Catalog API (`services.skus.list`), page by page.

Authenticated with an OAuth access token (e.g. `gcloud auth print-access-token`) or an API
key. Bounded: timeouts on every request, a few retries on 429 and 5xx, a page limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

BILLING_API = "https://cloudbilling.googleapis.com"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ATTEMPTS = 3
BACKOFF_SECONDS = 2.0
TIMEOUT_SECONDS = (10.0, 60.0)
MAX_PAGES = 100
PAGE_SIZE = 5000


class CatalogError(RuntimeError):
    """The catalogue could not be read; the message says why and what to do."""


def _explain(status: int, body: str) -> CatalogError:
    if status in (401, 403):
        return CatalogError(
            f"the Cloud Billing Catalog API refused the credentials (HTTP {status}). Run "
            "`gcloud auth login`, and enable the API in a project you can use (`gcloud "
            "services enable cloudbilling.googleapis.com`, then pass --quota-project), or "
            f"pass --api-key. Answer: {body[:300]}"
        )
    return CatalogError(f"the Cloud Billing Catalog API answered HTTP {status}: {body[:300]}")


def fetch_skus(
    service: str,
    *,
    token: str = "",
    api_key: str = "",
    quota_project: str = "",
    base_url: str = BILLING_API,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """Every SKU of a service, priced in USD."""
    http = session or requests.Session()
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if quota_project:
        headers["X-Goog-User-Project"] = quota_project
    url = f"{base_url.rstrip('/')}/v1/services/{service}/skus"
    skus: list[dict[str, Any]] = []
    page_token = ""
    for _ in range(MAX_PAGES):
        params = {"currencyCode": "USD", "pageSize": str(PAGE_SIZE)}
        if page_token:
            params["pageToken"] = page_token
        if api_key:
            params["key"] = api_key
        page = _get_page(http, url, params, headers, sleep)
        skus += page.get("skus") or []
        page_token = page.get("nextPageToken") or ""
        if not page_token:
            return skus
    raise CatalogError(f"more than {MAX_PAGES} pages of SKUs; stopped reading.")


def _get_page(
    http: requests.Session,
    url: str,
    params: dict[str, str],
    headers: dict[str, str],
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = http.get(url, params=params, headers=headers, timeout=TIMEOUT_SECONDS)
        except (requests.ConnectionError, requests.Timeout) as error:
            failure = f"connection failed: {type(error).__name__}"
        else:
            if response.status_code == 200:
                page: dict[str, Any] = response.json()
                return page
            if response.status_code not in RETRY_STATUSES:
                raise _explain(response.status_code, response.text)
            failure = f"HTTP {response.status_code}"
        if attempt < ATTEMPTS:
            sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
    raise CatalogError(f"{url}: gave up after {ATTEMPTS} attempts ({failure}).")
