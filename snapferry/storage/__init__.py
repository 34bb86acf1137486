"""Storage engines behind small interfaces: metadata (SQLAlchemy Core) and blocks."""
