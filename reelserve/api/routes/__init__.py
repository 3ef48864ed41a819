"""The API's routers, one per group of routes; ``reelserve.api.app`` assembles them."""
