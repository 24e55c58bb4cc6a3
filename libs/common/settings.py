"""One validated settings object per process, read once from ``TEXTPULSE_*`` environment variables.

``load_settings()`` is called by each service's ``main.py``; domain code receives values, never reads
the environment. A bad value stops the process with a message that names the variable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, FilePath, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.errors import ConfigurationError
from libs.common.kafka_security import KafkaAccess, SaslMechanism, SecurityProtocol, kafka_access

ENV_PREFIX = "TEXTPULSE_"
_DEFAULT_SECRET = "changethis"
MIN_SECRET_KEY_LENGTH = 32
# argon2 parameters of password hashes (services/api/auth.py): "cheap" is for test suites only.
PasswordCost = Literal["standard", "cheap"]
OptoutRole = Literal["all", "edge", "workers"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    # PostgreSQL
    database_url: str = Field(
        default="postgresql://textpulse:textpulse@127.0.0.1:55432/textpulse",
        pattern=r"^postgres(ql)?://",
    )
    db_pool_min_size: int = Field(default=1, ge=0, le=100)
    db_pool_max_size: int = Field(default=10, ge=1, le=200)

    # Kafka: the plain KAFKA_BOOTSTRAP_SERVERS is honoured too, so any cluster can be pointed at.
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        min_length=1,
        validation_alias=AliasChoices("TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_replication_factor: int = Field(default=1, ge=1, le=5)
    kafka_session_timeout_ms: int = Field(default=10_000, ge=6_000, le=300_000)
    # Static membership (KIP-345): a name this process keeps across restarts (the Helm chart can pass the pod
    # name). A member that comes back under it within the session timeout takes its partitions back without a
    # rebalance; one that stops keeps them, unread, until then (libs/common/runtime.py has the lifecycle).
    kafka_group_instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+$", max_length=200)
    topic_prefix: str = Field(default="", pattern=r"^[a-z0-9._-]*$", max_length=60)
    # How this process authenticates to Kafka; the combinations are checked in libs/common/kafka_security.py.
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: FilePath | None = None
    kafka_ssl_certfile: FilePath | None = None  # with the key: mutual TLS
    kafka_ssl_keyfile: FilePath | None = None

    # This process's HTTP endpoint (/healthz, /readyz, /metrics, and the API or webhooks where it has them).
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    public_base_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://")
    # Where tracked short links point when an organisation has set no short domain of its own (Settings):
    # the links service's public address (libs/common/links.py).
    short_link_base_url: str = Field(default="http://127.0.0.1:8005", pattern=r"^https?://[^/]+$")
    # How long a tracked short link redirects after its run's snapshot is written.
    short_link_days: int = Field(default=180, ge=1, le=3650)
    # Request bodies are capped before they are read (libs/common/body_limits.py); CSV uploads have their own cap.
    http_body_max_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    csv_upload_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    # Failed sign-ins from one client address in 15 minutes (each account has its own limit of 10).
    sign_in_max_per_address: int = Field(default=10, ge=1, le=1_000_000)
    # Connections and requests in flight past this are answered 503 at once instead of queuing in memory.
    http_limit_concurrency: int = Field(default=256, ge=1, le=100_000)
    # Which part of the opt-out service this process runs (services/optout/main.py): "edge" answers Twilio's
    # webhooks, "workers" applies them (intake, processing, relay, iMIS write-back), "all" both.
    optout_role: OptoutRole = "all"
    # After SIGTERM, how long the workers may take to finish the work in hand (the Helm chart's drainSeconds;
    # the pod's grace period is this plus a margin for closing connections).
    drain_seconds: float = Field(default=10.0, gt=0, le=600)
    # argon2's parameters for password hashes: "cheap" (its minimums) is for test suites, refused in production.
    password_hash_cost: PasswordCost = "standard"

    # Upstream services; the stand-ins differ from the real ones only by these URLs.
    twilio_api_base_url: str = Field(default="https://api.twilio.com", pattern=r"^https?://")
    twilio_messaging_base_url: str = Field(default="https://messaging.twilio.com", pattern=r"^https?://")
    # The twilio SDK has no timeout of its own; every call gets this one.
    twilio_timeout_s: float = Field(default=15.0, gt=0, le=60)
    imis_base_url: str = Field(default="https://imis.example.org", pattern=r"^https?://")
    # Members one run's audience may have when its organisation sets no cap of its own (0030).
    run_member_cap: int = Field(default=250_000, ge=1, le=10_000_000)

    # E-mail alerts.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Textpulse <alerts@textpulse.local>"
    # The demo's SMTP catcher (standins/smtp): set by ``make demo``, the dashboard then shows the alert
    # e-mails it caught ("Outbox (demo)"). Unset everywhere else, and the page does not exist.
    demo_outbox_url: str | None = Field(default=None, pattern=r"^https?://")

    # The key-encryption key of stored credentials (libs/common/secret_store.py) is derived from this, or
    # from the contents of the file, which wins when both are set. During a rotation the keys before it,
    # comma-separated, still unwrap (python -m deploy.secrets rotate re-wraps everything with the new one).
    secret_key: SecretStr = SecretStr(_DEFAULT_SECRET)
    secret_key_file: FilePath | None = None
    secret_key_previous: SecretStr | None = None
    # How long a process keeps an organisation's Twilio credentials before reading them again: a changed or
    # revoked token is used everywhere within this time.
    credentials_ttl_s: float = Field(default=5.0, gt=0, le=5)
    # Tests only (refused in production): a file holding seconds the dispatcher's clock runs ahead of the
    # system's (services/dispatcher/clock.py), so an end-to-end test can put it at 8:30 pm Eastern.
    dispatcher_clock_offset_file: str | None = None

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.secret_key_file is not None:
            if len(self.secret_key_file.read_text(encoding="utf-8").strip()) < MIN_SECRET_KEY_LENGTH:
                raise ValueError(f"TEXTPULSE_SECRET_KEY_FILE must hold at least {MIN_SECRET_KEY_LENGTH} characters")
        elif self.env == "production":
            if self.secret_key.get_secret_value() == _DEFAULT_SECRET:
                raise ValueError("TEXTPULSE_SECRET_KEY must be set to a real secret in production")
            if len(self.secret_key.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
                raise ValueError(f"TEXTPULSE_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters in "
                                 "production (for example: openssl rand -base64 32)")
        kafka = kafka_access(self)  # raises ValueError naming the variables of a combination that cannot work
        if self.env == "production" and kafka.security_protocol == "SASL_PLAINTEXT" and kafka.sasl_mechanism == "PLAIN":
            raise ValueError("TEXTPULSE_KAFKA_SASL_MECHANISM=PLAIN over SASL_PLAINTEXT sends the password in clear; "
                             "use SASL_SSL in production")
        if self.env == "production" and self.dispatcher_clock_offset_file is not None:
            raise ValueError("TEXTPULSE_DISPATCHER_CLOCK_OFFSET_FILE is for tests and is refused in production")
        if self.env == "production" and self.password_hash_cost != "standard":
            raise ValueError("TEXTPULSE_PASSWORD_HASH_COST must be standard in production")
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("TEXTPULSE_DB_POOL_MIN_SIZE must not exceed TEXTPULSE_DB_POOL_MAX_SIZE")
        return self


    @property
    def kafka(self) -> KafkaAccess:
        """How this process reaches Kafka: hand it to client_kwargs() for any aiokafka client."""
        return kafka_access(self)


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment; raise ConfigurationError naming each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError("settings_invalid", _describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        variable = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
        value = error.get("input")
        shown = f"={value!r}" if field and isinstance(value, str | int | float) else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{variable}{shown}: {message}" if field else message)
    return "invalid settings: " + "; ".join(problems)
