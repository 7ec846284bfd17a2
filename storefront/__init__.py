"""The storefront connector: connections to a merchant's shop (Shopify Admin API), import and
sync of its catalog, webhooks, and publishing approved assets. A layer above `studio`."""
