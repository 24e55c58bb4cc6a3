import re
import uuid
from pathlib import Path

import pytest

from libs.common.envelope import (
    KeyEncryptionKey,
    Keyring,
    SecretUnreadable,
    digest_key,
    is_sealed,
    new_data_key,
    number_digest,
    open_sealed,
    seal,
    sealed_key_id,
)
from libs.common.secret_store import keyring_from_settings
from libs.common.settings import Settings

ORG, OTHER_ORG = uuid.uuid4(), uuid.uuid4()
TOKEN = "0123456789abcdef0123456789abcdef"


def test_a_sealed_secret_opens_for_its_organisation_and_column_and_does_not_show_the_value() -> None:
    dek_id, dek = new_data_key()
    stored = seal(dek, dek_id, TOKEN, org_id=ORG, column="sms_accounts.auth_token")
    assert stored.startswith(f"tp1:{dek_id}:") and TOKEN not in stored and is_sealed(stored)
    assert sealed_key_id(stored, column="sms_accounts.auth_token") == dek_id
    assert open_sealed(dek, stored, org_id=ORG, column="sms_accounts.auth_token") == TOKEN
    assert seal(dek, dek_id, TOKEN, org_id=ORG, column="sms_accounts.auth_token") != stored  # a fresh nonce


@pytest.mark.parametrize(("org_id", "column"), [(OTHER_ORG, "sms_accounts.auth_token"),
                                                (ORG, "sms_accounts.api_key_secret")])
def test_a_secret_copied_to_another_organisation_or_column_does_not_open(org_id: uuid.UUID, column: str) -> None:
    dek_id, dek = new_data_key()
    stored = seal(dek, dek_id, TOKEN, org_id=ORG, column="sms_accounts.auth_token")
    with pytest.raises(SecretUnreadable) as refused:
        open_sealed(dek, stored, org_id=org_id, column=column)
    assert refused.value.code == "secret_unreadable" and TOKEN not in str(refused.value)


def test_an_altered_or_plain_value_is_refused() -> None:
    dek_id, dek = new_data_key()
    stored = seal(dek, dek_id, TOKEN, org_id=ORG, column="c")
    flipped = stored[:-2] + ("A" if stored[-2] != "A" else "B") + stored[-1]
    with pytest.raises(SecretUnreadable, match="does not decrypt"):
        open_sealed(dek, flipped, org_id=ORG, column="c")
    with pytest.raises(SecretUnreadable) as plain:
        sealed_key_id(TOKEN, column="c")
    assert plain.value.code == "secret_not_sealed" and TOKEN not in str(plain.value)


def test_a_key_id_depends_only_on_the_secret_and_reveals_nothing_of_it() -> None:
    first, again = KeyEncryptionKey.from_secret("secret one"), KeyEncryptionKey.from_secret("secret one")
    assert first == again and len(first.id) == 12 and first.key != KeyEncryptionKey.from_secret("secret two").key
    assert "secret" not in repr(first) and first.key.hex() not in repr(first)


def test_a_previous_key_still_unwraps_and_the_current_one_wraps() -> None:
    old = Keyring.from_secrets("the old key-encryption secret")
    dek_id, dek = new_data_key()
    wrapped = old.wrap(dek, org_id=ORG, dek_id=dek_id)
    rotating = Keyring.from_secrets("the new key-encryption secret", previous=["the old key-encryption secret"])
    assert rotating.unwrap(wrapped, kek_id=old.current_id, org_id=ORG, dek_id=dek_id) == dek
    rewrapped = rotating.wrap(dek, org_id=ORG, dek_id=dek_id)
    new_only = Keyring.from_secrets("the new key-encryption secret")
    assert new_only.unwrap(rewrapped, kek_id=rotating.current_id, org_id=ORG, dek_id=dek_id) == dek
    with pytest.raises(SecretUnreadable) as unknown:
        new_only.unwrap(wrapped, kek_id=old.current_id, org_id=ORG, dek_id=dek_id)
    assert unknown.value.code == "secret_key_unknown" and "TEXTPULSE_SECRET_KEY_PREVIOUS" in str(unknown.value)


def test_a_wrapped_data_key_copied_to_another_organisation_does_not_unwrap() -> None:
    keyring = Keyring.from_secrets("a key-encryption secret")
    dek_id, dek = new_data_key()
    wrapped = keyring.wrap(dek, org_id=ORG, dek_id=dek_id)
    with pytest.raises(SecretUnreadable, match="does not unwrap"):
        keyring.unwrap(wrapped, kek_id=keyring.current_id, org_id=OTHER_ORG, dek_id=dek_id)


def test_the_key_file_wins_over_the_variable_and_previous_keys_are_a_list(tmp_path: Path) -> None:
    key_file = tmp_path / "kek"
    key_file.write_text("k" * 44 + "\n")
    from_file = keyring_from_settings(Settings(secret_key="v" * 40, secret_key_file=key_file,
                                               secret_key_previous=" old-one-0123456789 , old-two-0123456789 "))
    assert from_file.current_id == KeyEncryptionKey.from_secret("k" * 44).id
    previous = ("old-one-0123456789", "old-two-0123456789")
    assert all(from_file.knows(KeyEncryptionKey.from_secret(s).id) for s in previous)
    assert not from_file.knows(KeyEncryptionKey.from_secret("v" * 40).id)


def test_a_numbers_digest_is_keyed_per_organisation_and_stable_for_its_data_key() -> None:
    _, dek = new_data_key()
    org, other = uuid.uuid4(), uuid.uuid4()
    digest = number_digest(digest_key(dek, org), "+447400123456")
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert number_digest(digest_key(dek, org), "+447400123456") == digest  # a later check still matches
    assert number_digest(digest_key(dek, other), "+447400123456") != digest  # no cross-organisation matching
    assert number_digest(digest_key(new_data_key()[1], org), "+447400123456") != digest  # the key is the data key
    assert number_digest(digest_key(dek, org), "+447400123457") != digest
