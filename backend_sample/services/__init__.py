"""Business logic. Routers stay thin; every rule lives in exactly one service."""
