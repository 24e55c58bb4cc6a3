"""Local stand-in for Twilio Messaging: ``python -m standins.twilio`` or ``create_app(config)``.

What it reproduces: docs/twilio.md#the-stand-in.
"""
