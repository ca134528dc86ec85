"""Headless core: engines, workers, session, config. Never imports Qt."""
