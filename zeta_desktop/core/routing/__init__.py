"""Choosing a model per prompt: classifier, router, telemetry, machine readings."""
