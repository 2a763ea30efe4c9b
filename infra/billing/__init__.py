"""The Cloud Billing Catalog API: E2 prices per region for infra/data/prices.yaml."""
