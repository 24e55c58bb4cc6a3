"""Local stand-in for the iMIS REST API (imis.md §6): ``python -m standins.imis`` or ``create_app(config)``."""
