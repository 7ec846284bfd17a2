"""backdrop-mini: Vitrine's bundled CPU scene model (procedural data, model, pipeline)."""
