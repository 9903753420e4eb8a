"""Resources: where the platform's I/O lives (warehouse, HTTP)."""
