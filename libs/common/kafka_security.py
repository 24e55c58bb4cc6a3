"""How every Kafka client of Textpulse reaches the cluster: address, protocol, SASL and TLS.

``KafkaAccess`` holds what ``TEXTPULSE_KAFKA_*`` says (``kafka_access(settings)`` builds it) and refuses
combinations that cannot work, such as SASL without a username. ``client_kwargs(access)`` is the one
function that turns it into aiokafka's keyword arguments; every producer, consumer and admin client
(services, ``deploy/``, ``bench/`` and the tests) is built from it, so none can forget the credentials.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import SecretStr

if TYPE_CHECKING:
    from libs.common.settings import Settings

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "PLAIN"]
SECURITY_PROTOCOLS: tuple[str, ...] = get_args(SecurityProtocol)
SASL_MECHANISMS: tuple[str, ...] = get_args(SaslMechanism)


@dataclass(frozen=True)
class KafkaAccess:
    """Where the cluster is and who this client is there. Raises ValueError on a combination that cannot
    work; the message names the ``TEXTPULSE_KAFKA_*`` variables involved. ``repr`` never shows the password.
    """

    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def env(self) -> dict[str, str]:
        """The ``TEXTPULSE_KAFKA_*`` variables that give a child process this same access."""
        values = {
            "TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "TEXTPULSE_KAFKA_SECURITY_PROTOCOL": self.security_protocol,
            "TEXTPULSE_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
            "TEXTPULSE_KAFKA_SASL_USERNAME": self.sasl_username,
            "TEXTPULSE_KAFKA_SASL_PASSWORD": self.sasl_password.get_secret_value() if self.sasl_password else None,
            "TEXTPULSE_KAFKA_SSL_CAFILE": self.ssl_cafile,
            "TEXTPULSE_KAFKA_SSL_CERTFILE": self.ssl_certfile,
            "TEXTPULSE_KAFKA_SSL_KEYFILE": self.ssl_keyfile,
        }
        return {name: str(value) for name, value in values.items() if value is not None}

    def settings_overrides(self) -> dict[str, str]:
        """The same as ``load_settings`` keyword arguments."""
        return {name.removeprefix("TEXTPULSE_").lower(): value for name, value in self.env().items()}


def _problems(access: KafkaAccess) -> list[str]:
    problems = []
    if access.security_protocol not in SECURITY_PROTOCOLS:
        problems.append(f"TEXTPULSE_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(SECURITY_PROTOCOLS)}")
    if access.sasl_mechanism not in SASL_MECHANISMS:
        problems.append(f"TEXTPULSE_KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}")
    if access.uses_sasl:
        if not access.sasl_username:
            problems.append(f"TEXTPULSE_KAFKA_SECURITY_PROTOCOL={access.security_protocol} needs "
                            "TEXTPULSE_KAFKA_SASL_USERNAME")
        if access.sasl_password is None or not access.sasl_password.get_secret_value():
            problems.append(f"TEXTPULSE_KAFKA_SECURITY_PROTOCOL={access.security_protocol} needs "
                            "TEXTPULSE_KAFKA_SASL_PASSWORD")
    elif access.sasl_username or access.sasl_password is not None:
        # Credentials that would silently go unused are a misconfiguration, not a default.
        problems.append(f"TEXTPULSE_KAFKA_SASL_USERNAME / _PASSWORD are set but TEXTPULSE_KAFKA_SECURITY_PROTOCOL="
                        f"{access.security_protocol} does not use SASL (use SASL_SSL)")
    tls_files = {"TEXTPULSE_KAFKA_SSL_CAFILE": access.ssl_cafile, "TEXTPULSE_KAFKA_SSL_CERTFILE": access.ssl_certfile,
                 "TEXTPULSE_KAFKA_SSL_KEYFILE": access.ssl_keyfile}
    if not access.uses_tls:
        given = [name for name, path in tls_files.items() if path is not None]
        if given:
            problems.append(f"{', '.join(given)} set but TEXTPULSE_KAFKA_SECURITY_PROTOCOL="
                            f"{access.security_protocol} does not use TLS (use SSL or SASL_SSL)")
    if (access.ssl_certfile is None) != (access.ssl_keyfile is None):
        problems.append("TEXTPULSE_KAFKA_SSL_CERTFILE and TEXTPULSE_KAFKA_SSL_KEYFILE go together (mutual TLS)")
    for name, path in tls_files.items():
        if path is not None and not path.is_file():
            problems.append(f"{name}={str(path)!r}: no such file")
    return problems


def kafka_access(settings: Settings) -> KafkaAccess:
    """The Kafka access that ``settings`` describe (already validated when the settings were loaded)."""
    return KafkaAccess(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=settings.kafka_sasl_password,
        ssl_cafile=settings.kafka_ssl_cafile,
        ssl_certfile=settings.kafka_ssl_certfile,
        ssl_keyfile=settings.kafka_ssl_keyfile,
    )


def client_kwargs(access: KafkaAccess) -> dict[str, Any]:
    """aiokafka's connection keyword arguments (for AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient).

    TLS verifies the broker's certificate and host name against the CA file (the system's CAs when none
    is given); a client certificate and key are presented for mutual TLS. Raises ssl.SSLError or OSError
    when a certificate file cannot be loaded.
    """
    kwargs: dict[str, Any] = {"bootstrap_servers": access.bootstrap_servers,
                              "security_protocol": access.security_protocol}
    if access.uses_tls:
        context = ssl.create_default_context(cafile=str(access.ssl_cafile) if access.ssl_cafile else None)
        if access.ssl_certfile is not None:
            context.load_cert_chain(str(access.ssl_certfile), str(access.ssl_keyfile))
        kwargs["ssl_context"] = context
    if access.uses_sasl:
        assert access.sasl_password is not None  # checked in __post_init__
        kwargs.update(sasl_mechanism=access.sasl_mechanism, sasl_plain_username=access.sasl_username,
                      sasl_plain_password=access.sasl_password.get_secret_value())
    return kwargs
