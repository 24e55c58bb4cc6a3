"""The demo's SMTP catcher: a real SMTP server (aiosmtpd) that keeps every message it is sent.

``make demo`` points the usage service's mailer at it, so alert e-mails land here instead of retrying
against a server that is not there; the dashboard's "Outbox (demo)" page lists them.
"""
