"""The price refresh: E2 rates parsed from Cloud Billing Catalog SKUs, read page by page
from a catalogue served on 127.0.0.1, and written back as infra/data/prices.yaml."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.billing.catalog import (
    COMPUTE_ENGINE_SERVICE,
    e2_rates,
    family_rates,
    render_prices,
    spot_fractions,
    with_new_catalogue,
)
from infra.billing.client import CatalogError, fetch_skus
from infra.data import DATA_DIR
from tests.conftest import ROOT
from tests.json_api import JsonApi

PAGES = [
    json.loads((ROOT / "tests" / "data" / "billing" / f"compute_skus_page{n}.json").read_text())
    for n in (1, 2)
]
ALL_SKUS = PAGES[0]["skus"] + PAGES[1]["skus"]


def test_e2_rates_come_from_the_on_demand_core_and_ram_skus() -> None:
    rates = e2_rates(ALL_SKUS)
    assert rates["us-central1"] == {"vcpu_hour": 0.02181159, "gib_hour": 0.00292353}
    assert rates["europe-west1"] == {"vcpu_hour": 0.02399337, "gib_hour": 0.00321609}
    # A SKU for one region beats the group SKU that also lists it.
    assert rates["us-east4"] == {"vcpu_hour": 0.02457, "gib_hour": 0.003293}
    # Spot, commitment and N1 SKUs are ignored; a region without a RAM rate is left out.
    assert set(rates) == {
        "us-central1",
        "us-east1",
        "us-east4",
        "us-west1",
        "europe-west1",
        "europe-west4",
    }


def test_a_change_of_units_stops_the_refresh() -> None:
    changed = json.loads(json.dumps(PAGES[0]["skus"][0]))
    changed["pricingInfo"][0]["pricingExpression"]["usageUnit"] = "mo"
    with pytest.raises(ValueError, match="is priced per 'mo', not 'h'"):
        e2_rates([changed])


def test_the_price_file_renders_back_to_itself() -> None:
    text = (DATA_DIR / "prices.yaml").read_text(encoding="utf-8")
    assert render_prices(yaml.safe_load(text)) == text


def test_a_new_catalogue_is_current_and_keeps_the_others() -> None:
    prices = yaml.safe_load((DATA_DIR / "prices.yaml").read_text(encoding="utf-8"))
    updated = with_new_catalogue(prices, e2_rates(ALL_SKUS), date(2027, 1, 5))
    assert updated["current"] == "2027-01"
    assert set(updated["catalogues"]) == {*prices["catalogues"], "2027-01"}
    new = updated["catalogues"]["2027-01"]
    assert new["as_of"] == "2027-01-05"
    assert new["e2"]["europe-west4"] == {"vcpu_hour": 0.02401338, "gib_hour": 0.00321816}
    assert new["gke_cluster_hour"] == prices["catalogues"]["2026-11"]["gke_cluster_hour"]
    assert new["fallback_region"] == "us-central1"
    assert yaml.safe_load(render_prices(updated)) == updated
    with pytest.raises(ValueError, match="no E2 vCPU and RAM SKUs"):
        with_new_catalogue(prices, {}, date(2027, 1, 5))


def test_other_families_come_from_their_own_skus() -> None:
    names = {
        "n2": "N2 Instance",
        "n2d": "N2D AMD Instance",
        "c4": "C4 Instance",
        "c4d": "C4D Instance",
    }
    found = family_rates(ALL_SKUS, names)
    assert set(found) == {"n2", "c4d"}  # no N2D or C4 SKUs here; C4 is not C4D's prefix
    assert found["c4d"]["us-central1"] == {"vcpu_hour": 0.0327035, "gib_hour": 0.003495578}
    # N1's "N1 Predefined Instance" SKUs are no N2's.
    assert found["n2"]["us-central1"]["vcpu_hour"] == 0.031611


def test_spot_fractions_come_from_each_familys_spot_skus_per_region() -> None:
    rates = e2_rates(ALL_SKUS)
    names = {"n2": "N2 Instance", "c4d": "C4D Instance"}
    fractions = spot_fractions(ALL_SKUS, names, rates, family_rates(ALL_SKUS, names))
    # e2-standard-4 on spot: 4 x 0.01309 + 16 x 0.001754, over 4 x 0.02181159 + 16 x 0.00292353.
    expected = (4 * 0.01309 + 16 * 0.001754) / (4 * 0.02181159 + 16 * 0.00292353)
    assert fractions["e2"]["us-central1"] == pytest.approx(expected, abs=1e-4)
    # Belgium has no spot SKU here: nothing to take, its fraction is carried over.
    assert "europe-west1" not in fractions["e2"]
    prices = yaml.safe_load((DATA_DIR / "prices.yaml").read_text(encoding="utf-8"))
    updated = with_new_catalogue(
        prices, rates, date(2027, 1, 5), spot={"e2": {"us-central1": 0.31}}
    )
    written = updated["catalogues"]["2027-01"]["spot_fractions"]
    assert written["e2"]["us-central1"] == 0.31
    # Other regions and families keep the current catalogue's fractions.
    assert written["e2"]["europe-west1"] == 0.484 and written["n2d"] == {"us-central1": 0.289}
    assert "Spot Preemptible" in updated["catalogues"]["2027-01"]["source"]
    kept = with_new_catalogue(prices, rates, date(2027, 1, 5))
    assert kept["catalogues"]["2027-01"]["spot_fractions"]["e2"]["us-central1"] == 0.6


class FakeCatalog(JsonApi):
    """services.skus.list on 127.0.0.1: the two pages, scripted failures, every request kept."""

    def __init__(self) -> None:
        self.fail_next: list[int] = []
        super().__init__(self._page)

    def _page(
        self, path: str, query: dict[str, list[str]], headers: dict[str, str]
    ) -> tuple[int, Any]:
        if self.fail_next:
            return self.fail_next.pop(0), {"error": {"message": "scripted"}}
        return 200, PAGES[1 if query.get("pageToken") == ["page-2"] else 0]


@pytest.fixture
def catalog() -> Iterator[FakeCatalog]:
    fake = FakeCatalog()
    yield fake
    fake.close()


def test_every_page_is_read_with_the_token(catalog: FakeCatalog) -> None:
    skus = fetch_skus(COMPUTE_ENGINE_SERVICE, token="t0ken", base_url=catalog.url)
    assert len(skus) == len(ALL_SKUS)
    paths = {r.path for r in catalog.requests}
    assert paths == {f"/v1/services/{COMPUTE_ENGINE_SERVICE}/skus"}
    first, second = (r.query for r in catalog.requests)
    assert first["currencyCode"] == ["USD"] and "pageToken" not in first
    assert second["pageToken"] == ["page-2"]
    assert all(r.headers["Authorization"] == "Bearer t0ken" for r in catalog.requests)


def test_an_api_key_and_a_quota_project_are_sent_as_google_expects(catalog: FakeCatalog) -> None:
    fetch_skus(COMPUTE_ENGINE_SERVICE, api_key="k3y", quota_project="proj", base_url=catalog.url)
    query, headers = catalog.requests[0].query, catalog.requests[0].headers
    assert query["key"] == ["k3y"]
    assert headers["X-Goog-User-Project"] == "proj"
    assert "Authorization" not in headers


def test_busy_answers_are_retried_and_refusals_explained(catalog: FakeCatalog) -> None:
    naps: list[float] = []
    catalog.fail_next = [429, 503]
    assert len(fetch_skus(COMPUTE_ENGINE_SERVICE, base_url=catalog.url, sleep=naps.append)) == 19
    assert naps == [2.0, 4.0]
    catalog.fail_next = [503, 503, 503]
    with pytest.raises(CatalogError, match="gave up after 3 attempts"):
        fetch_skus(COMPUTE_ENGINE_SERVICE, base_url=catalog.url, sleep=naps.append)
    catalog.fail_next = [403]
    with pytest.raises(CatalogError, match=r"refused the credentials.*gcloud auth login"):
        fetch_skus(COMPUTE_ENGINE_SERVICE, base_url=catalog.url, sleep=naps.append)


def refresh(catalog: FakeCatalog, out: Path) -> subprocess.CompletedProcess[str]:
    """scripts/refresh_prices.py as a user runs it, against the catalogue on loopback."""
    return subprocess.run(
        [sys.executable, "scripts/refresh_prices.py", "--api-key", "k3y", "--api-url",
         catalog.url, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_the_refresh_script_writes_a_current_catalogue(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    out = tmp_path / "prices.yaml"
    result = refresh(catalog, out)
    assert result.returncode == 0, result.stderr
    assert "E2 rates for 6 regions from 19 Compute Engine SKUs" in result.stdout
    assert "N2, C4D rates read" in result.stdout
    assert "spot fractions of E2, N2 in 4 regions from the spot SKUs" in result.stdout
    written = yaml.safe_load(out.read_text(encoding="utf-8"))
    month = datetime.now(UTC).strftime("%Y-%m")
    assert written["current"] == month
    assert set(written["catalogues"][month]["e2"]) >= {"us-central1", "europe-west4"}
    families = written["catalogues"][month]["families"]
    assert families["n2"]["us-central1"] == {"vcpu_hour": 0.031611, "gib_hour": 0.004237}
    assert written["catalogues"][month]["unverified_families"] == []
    committed = yaml.safe_load((DATA_DIR / "prices.yaml").read_text(encoding="utf-8"))
    before = committed["catalogues"][committed["current"]]
    assert families["c3"] == before["families"]["c3"]  # no C3 SKUs here: carried over
    # N2's own spot fraction, from its spot SKUs; T2D's carried over.
    spot = written["catalogues"][month]["spot_fractions"]
    expected = (4 * 0.006655 + 16 * 0.000892) / (4 * 0.031611 + 16 * 0.004237)
    assert spot["n2"]["us-central1"] == pytest.approx(expected, abs=1e-4)
    assert spot["t2d"] == before["spot_fractions"]["t2d"]
    assert out.read_text(encoding="utf-8").startswith("# On-demand GCP prices")


def test_the_refresh_script_explains_a_refusal_without_a_traceback(
    catalog: FakeCatalog, tmp_path: Path
) -> None:
    catalog.fail_next = [403]
    result = refresh(catalog, tmp_path / "prices.yaml")
    assert result.returncode == 2
    assert result.stderr.startswith("error: the Cloud Billing Catalog API refused")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "prices.yaml").exists()
