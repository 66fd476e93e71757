"""Bots: model, lifecycle services, gateway, freqtrade config and REST client."""
