"""The append-only audit log and its constructors."""
