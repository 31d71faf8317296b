"""Op definitions, one module per family; the user-facing names are in tinygraph.operations."""
