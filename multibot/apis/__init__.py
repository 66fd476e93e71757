"""API views of the project app: auth, users, monitoring."""
