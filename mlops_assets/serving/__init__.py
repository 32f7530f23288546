"""Serving without Dagster: the champion into the BentoML store, and the Bento that serves it."""
