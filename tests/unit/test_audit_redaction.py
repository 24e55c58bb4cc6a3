"""What the audit log keeps of a before or after: secrets by key name are replaced, at any depth."""

from __future__ import annotations

from services.api.audit import REDACTED, is_secret, redact


def test_secret_names_are_redacted_at_any_depth_and_unset_secrets_stay_null() -> None:
    value = {"account_sid": "AC1", "auth_token": "t0ken", "nested": {"api_key_secret": "s3cret", "label": "Office"},
             "keys": [{"password": "hunter2", "key": "tpk_abc"}], "webhook_shared_key_secret": None,
             "csrf_token": "abc", "token": "x"}
    assert redact(value) == {"account_sid": "AC1", "auth_token": REDACTED,
                             "nested": {"api_key_secret": REDACTED, "label": "Office"},
                             "keys": [{"password": REDACTED, "key": REDACTED}], "webhook_shared_key_secret": None,
                             "csrf_token": REDACTED, "token": REDACTED}


def test_names_that_only_mention_a_secret_are_kept() -> None:
    assert not any(map(is_secret, ["api_key_sid", "key_id", "auth_token_set", "shared_key_id", "keyword"]))
    assert all(map(is_secret, ["AUTH_TOKEN", "secondary_auth_token", "password_hash", "Secret"]))
