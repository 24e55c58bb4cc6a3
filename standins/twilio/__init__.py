"""Local stand-in for Twilio Messaging (twilio.md §14): ``python -m standins.twilio`` or ``create_app(config)``."""
