from pathlib import Path

import pytest

from libs.common.errors import ConfigurationError
from libs.common.settings import load_settings


def test_defaults_load_without_any_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    settings = load_settings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:19092"
    assert settings.kafka_replication_factor == 1


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TEXTPULSE_KAFKA_REPLICATION_FACTOR", "three", "TEXTPULSE_KAFKA_REPLICATION_FACTOR='three'"),
        ("TEXTPULSE_HTTP_PORT", "70000", "TEXTPULSE_HTTP_PORT='70000'"),
        ("TEXTPULSE_DATABASE_URL", "mysql://x", "TEXTPULSE_DATABASE_URL='mysql://x'"),
        ("TEXTPULSE_LOG_LEVEL", "LOUD", "TEXTPULSE_LOG_LEVEL='LOUD'"),
        ("TEXTPULSE_TOPIC_PREFIX", "Bad Prefix", "TEXTPULSE_TOPIC_PREFIX='Bad Prefix'"),
        ("TEXTPULSE_SMTP_STARTTLS", "perhaps", "TEXTPULSE_SMTP_STARTTLS='perhaps'"),
        ("TEXTPULSE_DRAIN_SECONDS", "0", "TEXTPULSE_DRAIN_SECONDS='0'"),
        ("TEXTPULSE_KAFKA_GROUP_INSTANCE_ID", "pod name/1", "TEXTPULSE_KAFKA_GROUP_INSTANCE_ID='pod name/1'"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.code == "settings_invalid"
    assert expected in str(caught.value)


def test_every_bad_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTPULSE_HTTP_PORT", "0")
    monkeypatch.setenv("TEXTPULSE_DB_POOL_MAX_SIZE", "-1")
    message = str(pytest.raises(ConfigurationError, load_settings).value)
    assert "TEXTPULSE_HTTP_PORT" in message and "TEXTPULSE_DB_POOL_MAX_SIZE" in message


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production as it runs: without the test suites' cheap password hashing (refused there)."""
    monkeypatch.setenv("TEXTPULSE_ENV", "production")
    monkeypatch.delenv("TEXTPULSE_PASSWORD_HASH_COST", raising=False)


def test_cheap_password_hashing_is_refused_in_production(monkeypatch: pytest.MonkeyPatch, production: None) -> None:
    monkeypatch.setenv("TEXTPULSE_SECRET_KEY", "a-real-secret-from-the-vault-of-40-chars")
    monkeypatch.setenv("TEXTPULSE_PASSWORD_HASH_COST", "cheap")
    with pytest.raises(ConfigurationError, match="TEXTPULSE_PASSWORD_HASH_COST must be standard in production"):
        load_settings()
    monkeypatch.setenv("TEXTPULSE_ENV", "test")
    assert load_settings().password_hash_cost == "cheap"


def test_the_default_secret_is_refused_in_production(monkeypatch: pytest.MonkeyPatch, production: None) -> None:
    with pytest.raises(ConfigurationError, match="TEXTPULSE_SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("TEXTPULSE_SECRET_KEY", "a-real-secret-from-the-vault-of-40-chars")
    assert load_settings().env == "production"


def test_a_short_secret_is_refused_in_production(monkeypatch: pytest.MonkeyPatch, production: None) -> None:
    monkeypatch.setenv("TEXTPULSE_SECRET_KEY", "short-but-not-the-default")
    with pytest.raises(ConfigurationError, match="TEXTPULSE_SECRET_KEY must be at least 32 characters"):
        load_settings()
    monkeypatch.setenv("TEXTPULSE_ENV", "development")
    assert load_settings().secret_key.get_secret_value() == "short-but-not-the-default"


def test_a_key_file_replaces_the_variable_and_must_hold_a_real_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, production: None
) -> None:
    key_file = tmp_path / "kek"
    key_file.write_text("too short\n")
    monkeypatch.setenv("TEXTPULSE_SECRET_KEY_FILE", str(key_file))
    with pytest.raises(ConfigurationError, match="TEXTPULSE_SECRET_KEY_FILE must hold at least 32"):
        load_settings()
    key_file.write_text("k" * 44 + "\n")
    assert load_settings().secret_key_file == key_file
    monkeypatch.setenv("TEXTPULSE_SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="TEXTPULSE_SECRET_KEY_FILE"):
        load_settings()


def test_credentials_are_never_cached_for_more_than_five_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTPULSE_CREDENTIALS_TTL_S", "30")
    with pytest.raises(ConfigurationError, match="TEXTPULSE_CREDENTIALS_TTL_S"):
        load_settings()


def test_plain_kafka_bootstrap_servers_points_at_any_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    assert load_settings().kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"


def test_pool_bounds_must_be_ordered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTPULSE_DB_POOL_MIN_SIZE", "20")
    monkeypatch.setenv("TEXTPULSE_DB_POOL_MAX_SIZE", "5")
    with pytest.raises(ConfigurationError, match="TEXTPULSE_DB_POOL_MIN_SIZE"):
        load_settings()
