"""Tools beside the library: benchmarks and the end-to-end demo (not imported by vbill itself)."""
