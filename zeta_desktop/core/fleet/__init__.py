"""The workers that own the models: one thread per model, and the fleet of them."""
