"""Local stand-in for the iMIS REST API: ``python -m standins.imis`` or ``create_app(config)``.

What it serves: docs/imis.md#the-stand-in.
"""
