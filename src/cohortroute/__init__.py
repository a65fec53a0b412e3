"""cohortroute: serve several versions of a multi-tenant app and move tenants between them."""
