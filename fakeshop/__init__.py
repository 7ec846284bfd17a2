"""Fake Shopify storefront for tests and demos (see README.md). Imports no project app."""

from fakeshop.server import FakeShop, oauth_hmac, webhook_hmac

__all__ = ["FakeShop", "oauth_hmac", "webhook_hmac"]
