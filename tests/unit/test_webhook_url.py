"""The webhook_base_url rule (services/api/webhook_url.py): https only, no internal hosts, outside development."""

from __future__ import annotations

import pytest

from services.api.errors import InvalidInput
from services.api.webhook_url import check_webhook_base_url

REFUSED_IN_PRODUCTION = [
    ("http://sms.example.org/hooks", "url_not_https"),
    ("ftp://sms.example.org", "url_not_https"),
    ("https://169.254.169.254/latest/meta-data", "url_host_internal"),  # cloud metadata
    ("https://[fd00:ec2::254]/", "url_host_internal"),
    ("https://[::ffff:169.254.169.254]/", "url_host_internal"),
    ("https://127.0.0.1:8001", "url_host_internal"),
    ("https://127.1/", "url_host_internal"),
    ("https://2130706433/", "url_host_internal"),
    ("https://0x7f000001/", "url_host_internal"),
    ("https://10.1.2.3/", "url_host_internal"),
    ("https://192.168.0.10/", "url_host_internal"),
    ("https://100.64.0.1/", "url_host_internal"),
    ("https://0.0.0.0/", "url_host_internal"),
    ("https://[::1]/", "url_host_internal"),
    ("https://localhost/", "url_host_internal"),
    ("https://api.localhost/", "url_host_internal"),
    ("https://metadata.google.internal/", "url_host_internal"),
    ("https://intranet/", "url_host_internal"),
    ("https://user:secret@sms.example.org/", "url_has_credentials"),
    ("https://sms.example.org:port/", "url_invalid"),
    ("https:///twilio", "url_invalid"),
]


@pytest.mark.parametrize(("url", "code"), REFUSED_IN_PRODUCTION, ids=[u for u, _ in REFUSED_IN_PRODUCTION])
def test_refused_outside_development(url: str, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_webhook_base_url(url, env="production")
    assert refused.value.code == code
    assert refused.value.field == "webhook_base_url"


@pytest.mark.parametrize("url", ["https://sms.example.org/hooks", "https://sms.example.org:8443/", "https://8.8.8.8/"])
def test_public_https_urls_are_accepted(url: str) -> None:
    assert check_webhook_base_url(url + "/", env="production") == url.rstrip("/")


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_allows_http_and_local_hosts(env: str) -> None:
    assert check_webhook_base_url("http://127.0.0.1:8001", env=env) == "http://127.0.0.1:8001"
    assert check_webhook_base_url("http://localhost:8001/", env=env) == "http://localhost:8001"
    with pytest.raises(InvalidInput):
        check_webhook_base_url("ftp://127.0.0.1", env=env)
