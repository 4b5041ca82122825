"""Open WebUI filter functions."""
