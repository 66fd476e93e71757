"""Trade records collected from bots and the figures computed from them."""
