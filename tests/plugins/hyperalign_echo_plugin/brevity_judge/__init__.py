"""A judge plugin: this package's folder holds the judge (config.toml and its template)."""
