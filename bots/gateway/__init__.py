"""The trading gateway: parent and supervisor of this host's freqtrade processes."""
