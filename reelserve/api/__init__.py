"""The HTTP layer: the only package that knows about status codes."""

from reelserve.api.app import create_app

__all__ = ["create_app"]
