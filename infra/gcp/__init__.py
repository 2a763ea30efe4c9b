"""Google Cloud reached directly, beside Pulumi: the user's credentials for the few API calls
the commands make themselves (prices, quotas)."""
