"""``python -m multibot_client.cli``: the ``multibot`` command without its installed script."""

from multibot_client.cli import main

main()
