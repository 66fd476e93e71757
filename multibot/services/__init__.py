"""Services of the project app: authentication and user administration."""
