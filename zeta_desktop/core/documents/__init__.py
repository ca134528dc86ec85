"""Document collections: reading, chunking, vectors and hybrid retrieval."""
