"""Log and store: the RFC 9162 transparency log and the bundle store (SQLite)."""
