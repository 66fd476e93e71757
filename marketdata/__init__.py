"""Candle storage in freqtrade's layout, uploads, downloads and the replay exchange."""
