"""Zeta as a local OpenAI-compatible server: `model: "auto"` is routed.

A client of the core like the window: it reaches the session only through
the door (core/chat/api.py), and an import-linter contract holds it to that.
FastAPI on uvicorn; the response shapes are the `openai` package's own
models. `zeta-desktop serve` runs it headless; the window's Server switch
runs the same `ZetaServer` on a thread of its own.
"""
