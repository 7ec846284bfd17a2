"""Vitrine's server-rendered pages, one module per area of the left navigation; `base` holds
what they share (the signed-in member's workspace and role)."""
