"""HTTP layer: thin routers that validate input and delegate to services."""
