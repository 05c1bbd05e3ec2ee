"""A billing period's end: period windows, close records, invoices (docs/protocol-v2.md §13-15)."""
