"""The core: model description, loading, pooling, batching, encoders, similarity, search, cache."""
