"""Regenerate infra/data/prices.yaml's E2 rates from the Cloud Billing Catalog API.

Runs on your machine with your credentials (it needs the network and a Google account):

    venv/bin/python scripts/refresh_prices.py                      # token from gcloud
    venv/bin/python scripts/refresh_prices.py --api-key KEY        # or an API key
    venv/bin/python scripts/refresh_prices.py --out /tmp/prices.yaml

Adds a catalogue named for this month with the on-demand E2 vCPU and RAM rates of every
region the catalogue prices E2 in, and those of the other machine families
(infra/data/families.yaml: N2, N2D, T2D, N4, C3, C3D, C4, C4D) wherever the catalogue
lists them, makes it current, and keeps the older catalogues. Each family's spot fraction
is taken per region from its "Spot Preemptible" SKUs (the ones the catalogue has none for
are carried over); the other prices (GKE fee, load balancer, disks, custom factor) are
carried over: review them by hand. Commit the file with the diff `plan --diff` shows.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from infra.billing.catalog import (  # noqa: E402
    COMPUTE_ENGINE_SERVICE,
    e2_rates,
    family_rates,
    gpu_prices,
    render_prices,
    service_regions,
    spot_fractions,
    with_new_catalogue,
)
from infra.billing.client import BILLING_API, CatalogError, fetch_skus  # noqa: E402
from infra.data import load, read_yaml  # noqa: E402
from infra.gcp.credentials import GcloudError, access_token  # noqa: E402
from infra.inputs.errors import InputError  # noqa: E402
from infra.inputs.values import output_file  # noqa: E402

PRICES = ROOT / "infra" / "data" / "prices.yaml"


def sku_names() -> dict[str, str]:
    """family -> how the Billing Catalog names its SKUs (infra/data/families.yaml)."""
    return {family: str(f["sku"]) for family, f in load("families")["families"].items()}


def gpu_sku_names() -> dict[str, str]:
    """accelerator -> how the Billing Catalog names its SKUs (infra/data/gpus.yaml)."""
    return {gpu: str(g["sku"]) for gpu, g in load("gpus")["accelerators"].items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-key", default=os.environ.get("GOOGLE_API_KEY", ""))
    parser.add_argument("--quota-project", default="", help="project billed for the API calls")
    parser.add_argument("--api-url", default=BILLING_API, help=argparse.SUPPRESS)
    parser.add_argument("--prices", type=Path, default=PRICES, help="the file to start from")
    parser.add_argument("--out", type=output_file, help="where to write (default: --prices)")
    args = parser.parse_args(argv)
    try:
        # The file first: a mistake in it is found before any call is made.
        prices = read_yaml(args.prices, "the price catalogue (infra/data/prices.yaml)")
        if not prices or "catalogues" not in prices:
            raise InputError(
                f"{args.prices} has no `catalogues`: start from infra/data/prices.yaml"
            )
        token = "" if args.api_key else access_token("pass --api-key")
        skus = fetch_skus(
            COMPUTE_ENGINE_SERVICE,
            token=token,
            api_key=args.api_key,
            quota_project=args.quota_project,
            base_url=args.api_url,
        )
        rates = e2_rates(skus)
        families = family_rates(skus, sku_names())
        spot = spot_fractions(skus, sku_names(), rates, families)
        gpus = gpu_prices(skus, gpu_sku_names())
        updated = with_new_catalogue(
            prices,
            rates,
            datetime.now(UTC).date(),
            service_regions(skus),
            families=families,
            spot=spot,
            gpus=gpus,
        )
    except (CatalogError, GcloudError, InputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    target = args.out or args.prices
    target.write_text(render_prices(updated), encoding="utf-8")
    print(
        f"Wrote catalogue {updated['current']} to {target}: E2 rates for {len(rates)} regions "
        f"from {len(skus)} Compute Engine SKUs; "
        + (
            f"{', '.join(f.upper() for f in families)} rates read; "
            if families
            else "no other family's SKUs (their rates carried over); "
        )
        + (
            f"spot fractions of {', '.join(f.upper() for f in sorted(spot))} in "
            f"{len({r for t in spot.values() for r in t})} regions from the spot SKUs."
            if spot
            else "spot fractions carried over (no spot SKUs)."
        )
        + (
            f" GPU prices of {', '.join(sorted(gpus))} read."
            if gpus
            else " GPU prices carried over (no GPU SKUs)."
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
