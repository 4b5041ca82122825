"""Open WebUI action functions (0.1.10's ``actions`` package)."""
