"""The stand-in's Webhooks SharedKeys API, through the twilio SDK, and webhooks signed with a SharedKey
(HMAC-SHA256 or HMAC-SHA1, named in X-Twilio-Webhooks-Signature-Settings) or with the auth token, checked
with the SDK's own RequestValidator."""

from __future__ import annotations

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.rest import Client
from twilio.rest.webhooks.v1.shared_key import SharedKeyList

from tests.standins.conftest import TWILIO_TEST_CONFIG, SdkFactory, WebhookSink, wait_for

CONFIG = TWILIO_TEST_CONFIG
DIRECT = "+18885550100"
SETTINGS = "x-twilio-webhooks-signature-settings"


def _webhooks(make_sdk: SdkFactory, twilio_url: str, username: str, password: str) -> Client:
    client = make_sdk(username, password)
    client.webhooks.base_url = twilio_url
    return client


def test_a_shared_key_shows_its_secret_once_and_belongs_to_its_account(
    make_sdk: SdkFactory, twilio_url: str
) -> None:
    client = _webhooks(make_sdk, twilio_url, CONFIG.account_sid, CONFIG.auth_token)
    keys = client.webhooks.v1.shared_keys
    created = keys.create(SharedKeyList.PostSharedKey({"friendlyName": "Textpulse"}))
    assert created.id is not None and created.id.startswith("webhooks_sharedkey_") and len(created.secret or "") >= 32
    fetched = keys(created.id).fetch()
    assert (fetched.id, fetched.friendly_name, fetched.secret) == (created.id, "Textpulse", None)
    assert [k.id for k in keys.list()] == [created.id]

    with pytest.raises(TwilioRestException) as refused:
        _webhooks(make_sdk, twilio_url, CONFIG.account_sid, "0" * 32).webhooks.v1.shared_keys.create(
            SharedKeyList.PostSharedKey({}))
    assert refused.value.status == 401
    with pytest.raises(TwilioRestException) as hidden:
        _webhooks(make_sdk, twilio_url, CONFIG.test_account_sid, CONFIG.test_auth_token).webhooks.v1.shared_keys(
            created.id).fetch()
    assert hidden.value.status == 403  # test credentials may not manage keys

    assert keys(created.id).delete()
    with pytest.raises(TwilioRestException) as gone:
        keys(created.id).fetch()
    assert gone.value.status == 404


@pytest.mark.parametrize("algorithm", ["HMAC_SHA256", "HMAC_SHA1"])
def test_status_callbacks_and_incoming_messages_are_signed_with_the_shared_key(
    make_sdk: SdkFactory, sdk: Client, twilio_url: str, control: httpx.Client, sink: WebhookSink, algorithm: str
) -> None:
    key = _webhooks(make_sdk, twilio_url, CONFIG.account_sid, CONFIG.auth_token).webhooks.v1.shared_keys.create(
        SharedKeyList.PostSharedKey({"friendlyName": "Textpulse"}))
    assert key.id is not None and key.secret is not None
    control.put("/webhook-signing", json={"scheme": "shared_key", "shared_key_id": key.id,
                                          "algorithm": algorithm}).raise_for_status()
    control.put(f"/numbers/{DIRECT}", json={"sms_url": sink.url + "/inbound"}).raise_for_status()

    sdk.messages.create(to="+14155550601", from_=DIRECT, body="hi", status_callback=sink.url + "/status")
    control.post("/replies", json={"from": "+14155550602", "to": DIRECT, "body": "STOP"}).raise_for_status()
    hooks = wait_for(lambda: len(s := sink.at("/status")) >= 2 and sink.at("/inbound") and s + sink.at("/inbound"),
                     what="callbacks and the incoming message")

    shared, token = RequestValidator(key.secret), RequestValidator(CONFIG.auth_token)
    for hook in hooks:
        header = hook.headers[SETTINGS]
        assert header == f"key={key.id},algorithm={algorithm}"
        assert get_signature_algorithm(header) == algorithm
        url = sink.url + hook.path
        assert shared.validate(url, hook.params, hook.headers["x-twilio-signature"], algorithm=algorithm)
        assert not token.validate(url, hook.params, hook.headers["x-twilio-signature"], algorithm=algorithm)


def test_the_auth_token_signs_by_default_and_after_a_reset(
    make_sdk: SdkFactory, sdk: Client, twilio_url: str, control: httpx.Client, sink: WebhookSink
) -> None:
    unknown = control.put("/webhook-signing", json={"scheme": "shared_key", "shared_key_id": "webhooks_sharedkey_x"})
    assert unknown.status_code == 422
    key = _webhooks(make_sdk, twilio_url, CONFIG.account_sid, CONFIG.auth_token).webhooks.v1.shared_keys.create(
        SharedKeyList.PostSharedKey({}))
    control.put("/webhook-signing", json={"scheme": "shared_key", "shared_key_id": key.id}).raise_for_status()
    control.post("/reset").raise_for_status()  # keys and signing back to the configuration

    sdk.messages.create(to="+14155550603", from_=DIRECT, body="hi", status_callback=sink.url + "/plain")
    hook = wait_for(lambda: sink.at("/plain"), what="a callback")[0]
    assert SETTINGS not in hook.headers
    assert RequestValidator(CONFIG.auth_token).validate(sink.url + "/plain", hook.params,
                                                        hook.headers["x-twilio-signature"])
