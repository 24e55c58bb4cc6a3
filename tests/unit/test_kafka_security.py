"""The Kafka security settings: combinations that cannot work are refused at start, and the one function
that builds every client's connection arguments gives aiokafka what the settings say."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from libs.common.errors import ConfigurationError
from libs.common.kafka_security import KafkaAccess, client_kwargs
from libs.common.settings import load_settings


@pytest.fixture(autouse=True)
def _no_kafka_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "TEXTPULSE_KAFKA_BOOTSTRAP_SERVERS", "TEXTPULSE_KAFKA_SECURITY_PROTOCOL",
                 "TEXTPULSE_KAFKA_SASL_USERNAME", "TEXTPULSE_KAFKA_SASL_PASSWORD", "TEXTPULSE_KAFKA_SSL_CAFILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pem_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key, as a CA file and as a client certificate for mutual TLS."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dispatcher")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_plaintext_is_the_default_and_passes_only_the_address() -> None:
    settings = load_settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert client_kwargs(settings.kafka) == {"bootstrap_servers": "127.0.0.1:19092", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_from_the_environment_gives_scram_credentials_and_a_verifying_tls_context(
    monkeypatch: pytest.MonkeyPatch, pem_files: tuple[Path, Path]
) -> None:
    ca_file, _ = pem_files
    monkeypatch.setenv("TEXTPULSE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TEXTPULSE_KAFKA_SASL_USERNAME", "dispatcher")
    monkeypatch.setenv("TEXTPULSE_KAFKA_SASL_PASSWORD", "s3cret-from-the-vault")
    monkeypatch.setenv("TEXTPULSE_KAFKA_SSL_CAFILE", str(ca_file))
    settings = load_settings()
    kwargs = client_kwargs(settings.kafka)
    assert {k: v for k, v in kwargs.items() if k != "ssl_context"} == {
        "bootstrap_servers": "127.0.0.1:19092", "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "dispatcher", "sasl_plain_password": "s3cret-from-the-vault"}
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "dispatcher"),),)]
    # The password is a secret: neither the settings nor the access show it.
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(settings.kafka)


def test_mutual_tls_loads_the_client_certificate_and_key(pem_files: tuple[Path, Path]) -> None:
    cert_file, key_file = pem_files
    access = KafkaAccess("broker:9093", "SSL", ssl_cafile=cert_file, ssl_certfile=cert_file, ssl_keyfile=key_file)
    kwargs = client_kwargs(access)
    assert kwargs["security_protocol"] == "SSL" and "sasl_mechanism" not in kwargs
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)


def test_a_client_key_that_does_not_match_its_certificate_fails_loudly(
    pem_files: tuple[Path, Path], tmp_path: Path
) -> None:
    cert_file, _ = pem_files
    other_key = tmp_path / "other.key"
    other_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(ssl.SSLError):
        client_kwargs(KafkaAccess("broker:9093", "SSL", ssl_certfile=cert_file, ssl_keyfile=other_key))


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"TEXTPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TEXTPULSE_KAFKA_SASL_PASSWORD": "x"},
         "TEXTPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs TEXTPULSE_KAFKA_SASL_USERNAME"),
        ({"TEXTPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "TEXTPULSE_KAFKA_SASL_USERNAME": "usage"},
         "TEXTPULSE_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs TEXTPULSE_KAFKA_SASL_PASSWORD"),
        ({"TEXTPULSE_KAFKA_SASL_USERNAME": "usage", "TEXTPULSE_KAFKA_SASL_PASSWORD": "x"},
         "TEXTPULSE_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use SASL"),
        ({"TEXTPULSE_KAFKA_SECURITY_PROTOCOL": "TLS"}, "TEXTPULSE_KAFKA_SECURITY_PROTOCOL='TLS'"),
        ({"TEXTPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TEXTPULSE_KAFKA_SASL_MECHANISM": "GSSAPI"},
         "TEXTPULSE_KAFKA_SASL_MECHANISM='GSSAPI'"),
        ({"TEXTPULSE_KAFKA_SECURITY_PROTOCOL": "SSL", "TEXTPULSE_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
         "TEXTPULSE_KAFKA_SSL_CAFILE='/nonexistent/ca.pem'"),
    ],
)
def test_a_combination_that_cannot_work_is_refused_at_start_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.code == "settings_invalid"
    assert expected in str(caught.value)


def test_tls_files_without_tls_and_half_a_client_certificate_are_refused(pem_files: tuple[Path, Path]) -> None:
    cert_file, key_file = pem_files
    with pytest.raises(ValueError, match="TEXTPULSE_KAFKA_SSL_CAFILE set but .*=PLAINTEXT does not use TLS"):
        KafkaAccess("broker:9092", ssl_cafile=cert_file)
    with pytest.raises(ValueError, match="TEXTPULSE_KAFKA_SSL_CERTFILE and TEXTPULSE_KAFKA_SSL_KEYFILE go together"):
        KafkaAccess("broker:9093", "SSL", ssl_certfile=cert_file)
    with pytest.raises(ValueError, match="TEXTPULSE_KAFKA_SSL_KEYFILE=.*: no such file"):
        KafkaAccess("broker:9093", "SSL", ssl_certfile=cert_file, ssl_keyfile=key_file.with_name("gone.key"))


def test_plain_over_an_unencrypted_connection_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"TEXTPULSE_ENV": "production", "TEXTPULSE_SECRET_KEY": "k" * 40,
                        "TEXTPULSE_PASSWORD_HASH_COST": "standard",  # the suite's own setting is refused here
                        "TEXTPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                        "TEXTPULSE_KAFKA_SASL_MECHANISM": "PLAIN", "TEXTPULSE_KAFKA_SASL_USERNAME": "usage",
                        "TEXTPULSE_KAFKA_SASL_PASSWORD": "x"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match="sends the password in clear"):
        load_settings()
    monkeypatch.setenv("TEXTPULSE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    assert load_settings().kafka.sasl_mechanism == "PLAIN"


def test_a_child_process_given_env_connects_the_same_way(pem_files: tuple[Path, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    ca_file, _ = pem_files
    access = KafkaAccess("127.0.0.1:29201", "SASL_SSL", "SCRAM-SHA-512", "optout", SecretStr("pw"), ssl_cafile=ca_file)
    for name, value in access.env().items():
        monkeypatch.setenv(name, value)
    assert load_settings().kafka == access
