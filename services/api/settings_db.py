"""SQL for the organisation's settings (``settings.sql``). Secrets go in, never come out."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from libs.common.db import Connection, Queries
from libs.common.secret_store import API_KEY_SECRET, AUTH_TOKEN, IMIS_PASSWORD, WEBHOOK_SHARED_KEY_SECRET, SecretStore

QUERIES = Queries.load(Path(__file__).with_name("settings.sql"))

Row = dict[str, Any]


async def org_settings(conn: Connection, org_id: UUID) -> Row:
    record = await QUERIES.fetchrow(conn, "org-settings", org_id=org_id)
    assert record is not None, "the caller's organisation exists"
    return dict(record)


async def update_org_settings(conn: Connection, org_id: UUID, fields: Row) -> None:
    await QUERIES.execute(conn, "update-org-settings", org_id=org_id, time_zone=fields["time_zone"],
                          default_country_prefix=fields["default_country_prefix"],
                          campaign_segment_limit=fields["campaign_segment_limit"],
                          alert_emails=list(fields["alert_emails"]),
                          retention_webhook_days=fields["retention_webhook_days"],
                          retention_reply_days=fields["retention_reply_days"],
                          retention_body_days=fields["retention_body_days"],
                          retention_csv_days=fields["retention_csv_days"],
                          run_member_cap=fields["run_member_cap"],
                          revocation_confirmation=fields["revocation_confirmation"],
                          revocation_confirmation_text=fields["revocation_confirmation_text"],
                          require_approval=fields["require_approval"],
                          short_link_base_url=fields["short_link_base_url"],
                          reply_digests=fields["reply_digests"])


async def sms_account(conn: Connection, org_id: UUID) -> Row | None:
    record = await QUERIES.fetchrow(conn, "sms-account", org_id=org_id)
    return None if record is None else dict(record)


async def lock_sms_account(conn: Connection, org_id: UUID) -> bool:
    return await QUERIES.fetchval(conn, "lock-sms-account", org_id=org_id) is not None


async def update_sms_account(conn: Connection, org_id: UUID, fields: Row) -> None:
    await QUERIES.execute(conn, "update-sms-account", org_id=org_id, friendly_name=fields["friendly_name"],
                          account_type=fields["account_type"], alpha_sender_id=fields["alpha_sender_id"],
                          max_segments=fields["max_segments"], test_mode=fields["test_mode"],
                          webhook_base_url=fields["webhook_base_url"])


async def account_linked_elsewhere(conn: Connection, org_id: UUID, account_sid: str) -> bool:
    return bool(await QUERIES.fetchval(conn, "account-linked-elsewhere", org_id=org_id, account_sid=account_sid))


async def link_sms_account(conn: Connection, secrets: SecretStore, org_id: UUID, account_sid: str,
                           auth_token: str, webhook_base_url: str) -> None:
    """Store the account with its token sealed. Raises asyncpg.UniqueViolationError when another
    organisation has linked the same account."""
    sealed = await secrets.seal(conn, org_id, AUTH_TOKEN, auth_token)
    await QUERIES.execute(conn, "link-sms-account", org_id=org_id, account_sid=account_sid, auth_token=sealed,
                          webhook_base_url=webhook_base_url)


async def set_api_key(conn: Connection, secrets: SecretStore, org_id: UUID, api_key_sid: str,
                      api_key_secret: str) -> None:
    sealed = await secrets.seal(conn, org_id, API_KEY_SECRET, api_key_secret)
    await QUERIES.execute(conn, "set-api-key", org_id=org_id, api_key_sid=api_key_sid, api_key_secret=sealed)


async def clear_api_key(conn: Connection, org_id: UUID) -> None:
    await QUERIES.execute(conn, "clear-api-key", org_id=org_id)


async def set_webhook_shared_key(conn: Connection, secrets: SecretStore, org_id: UUID, shared_key_id: str,
                                 shared_key_secret: str) -> None:
    """The SharedKey that signs the account's webhooks; its secret is sealed like the auth token."""
    sealed = await secrets.seal(conn, org_id, WEBHOOK_SHARED_KEY_SECRET, shared_key_secret)
    await QUERIES.execute(conn, "set-webhook-shared-key", org_id=org_id, shared_key_id=shared_key_id,
                          shared_key_secret=sealed)


async def clear_webhook_shared_key(conn: Connection, org_id: UUID) -> None:
    await QUERIES.execute(conn, "clear-webhook-shared-key", org_id=org_id)


async def account_credentials(conn: Connection, secrets: SecretStore,
                              org_id: UUID) -> tuple[str, str] | None:
    """(Account SID, auth token) to call Twilio for the organisation; None when no account is linked."""
    record = await QUERIES.fetchrow(conn, "account-credentials", org_id=org_id)
    if record is None:
        return None
    return record["account_sid"], await secrets.open(conn, org_id, AUTH_TOKEN, record["auth_token"])


async def set_default_sender(conn: Connection, org_id: UUID, sender_id: UUID) -> bool:
    """Make ``sender_id`` the default; False (and nothing changed) if it is not the organisation's."""
    await QUERIES.execute(conn, "clear-default-sender", org_id=org_id, sender_id=sender_id)
    return await QUERIES.fetchval(conn, "set-default-sender", org_id=org_id, sender_id=sender_id) is not None


async def set_sender_rate(conn: Connection, org_id: UUID, sender_id: UUID, segments_per_second: int) -> bool:
    """Set the sender's pace; False (and nothing changed) if it is not the organisation's."""
    return await QUERIES.fetchval(conn, "set-sender-rate", org_id=org_id, sender_id=sender_id,
                                  segments_per_second=segments_per_second) is not None


async def imis_account(conn: Connection, org_id: UUID) -> Row | None:
    record = await QUERIES.fetchrow(conn, "imis-account", org_id=org_id)
    return None if record is None else dict(record)


async def imis_login(conn: Connection, secrets: SecretStore, org_id: UUID) -> tuple[str | None, str, str] | None:
    """(base URL, user, password) of the organisation's iMIS link, to check it again; None when not linked."""
    record = await QUERIES.fetchrow(conn, "imis-login", org_id=org_id)
    if record is None:
        return None
    return record["base_url"], record["username"], await secrets.open(conn, org_id, IMIS_PASSWORD, record["password"])


async def link_imis_account(conn: Connection, secrets: SecretStore, org_id: UUID, base_url: str | None,
                            username: str, password: str, query_endpoint: str) -> None:
    """Store the link with its password sealed and the query endpoint its site answered on."""
    sealed = await secrets.seal(conn, org_id, IMIS_PASSWORD, password)
    await QUERIES.execute(conn, "link-imis-account", org_id=org_id, base_url=base_url, username=username,
                          password=sealed, query_endpoint=query_endpoint)


async def set_imis_endpoint(conn: Connection, org_id: UUID, query_endpoint: str) -> bool:
    return await QUERIES.fetchval(conn, "set-imis-endpoint", org_id=org_id, query_endpoint=query_endpoint) is not None
