"""Inference engines: the protocol a worker needs, and llama.cpp behind it."""
