"""The `payguard` command line: a thin layer over the engine, at the edge."""
