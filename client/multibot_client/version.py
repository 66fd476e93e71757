"""The client's version: the API's own (the server's SPECTACULAR_SETTINGS["VERSION"]), which a test keeps equal."""

__version__ = "1.0.0"
