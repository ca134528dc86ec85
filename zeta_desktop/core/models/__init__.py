"""Model files: finding the demo model, checking a GGUF file before it loads."""
