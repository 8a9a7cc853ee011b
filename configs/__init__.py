"""ml_collections configs, one per experiment (each has get_config())."""
