"""A small ONDC buyer-app service on tenantkv: many tenants, one client (see README.md)."""
