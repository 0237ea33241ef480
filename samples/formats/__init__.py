"""Sample builders, one module per format added through the registry (see make_samples)."""
