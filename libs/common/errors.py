"""The exception tree every Textpulse module raises from.

    TextpulseError(code, message)          stable snake_case ``code`` for logs, DLQ and API bodies
    ├── RetryableError                     transient: back off and try the same work again
    │   └── DependencyUnavailable          PostgreSQL, Kafka, Twilio or iMIS did not answer in time
    └── PermanentError                     retrying cannot help: dead-letter, reject or alert
        ├── ConfigurationError             a setting or the environment is wrong
        ├── EventRejected                  an event failed validation (not JSON, schema, version)
        └── InvalidTransition              a state change that the state machine forbids

Adapters translate a provider's failure into this tree once, at the edge (Twilio's 20429 is
retryable, its 21610 is permanent), so callers only ever catch these types.
"""

from __future__ import annotations


class TextpulseError(Exception):
    """Base of every error Textpulse raises on purpose; ``code`` is stable, ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class RetryableError(TextpulseError):
    """The same work may succeed later; the caller backs off and retries it unchanged."""


class DependencyUnavailable(RetryableError):
    """A dependency (database, broker, Twilio, iMIS) is down or timed out."""


class PermanentError(TextpulseError):
    """The work can never succeed as it is; retrying would only repeat the failure."""


class ConfigurationError(PermanentError):
    """A setting or the environment is wrong; the process should stop with this message."""


class EventRejected(PermanentError):
    """An event could not be accepted: not JSON, wrong schema version, or a field failed validation."""


class InvalidTransition(PermanentError):
    """A state change the state machine does not allow; ``current`` names the state it is in."""

    def __init__(self, current: str, requested: str) -> None:
        super().__init__("invalid_transition", f"cannot go from {current} to {requested}")
        self.current = current
        self.requested = requested
