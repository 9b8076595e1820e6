"""The platform API's routers, one per concern."""
