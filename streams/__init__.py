"""The Redis Streams bus: catalog, publishing, consumer-group worker, dead letters."""
