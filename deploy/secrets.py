"""``python -m deploy.secrets rotate|status``: rotate the key-encryption key of stored credentials.

A rotation, without downtime:

1. Give every process the new key and keep the old one readable: ``TEXTPULSE_SECRET_KEY=<new>`` (or its
   file) and ``TEXTPULSE_SECRET_KEY_PREVIOUS=<old>``, then restart the services one by one. Each reads
   data keys wrapped by either key and wraps new ones with the new key.
2. ``python -m deploy.secrets rotate`` (same environment): every data key still wrapped by an older key
   is re-wrapped with the new one, in short batches; services keep running and reading meanwhile.
   The data keys themselves, and so every stored credential, stay the same.
3. Once ``status`` shows only the new key's id, drop ``TEXTPULSE_SECRET_KEY_PREVIOUS``.

``status`` prints the current key's id and how many data keys each key id wraps.
"""

from __future__ import annotations

import argparse
import asyncio

import asyncpg

from libs.common.secret_store import data_keys_by_kek, keyring_from_settings, rewrap_data_keys
from libs.common.settings import load_settings


async def main(command: str) -> int:
    settings = load_settings()
    keyring = keyring_from_settings(settings)
    conn = await asyncpg.connect(settings.database_url)
    try:
        if command == "rotate":
            rewrapped = await rewrap_data_keys(conn, keyring)
            print(f"data keys re-wrapped with key {keyring.current_id}: {rewrapped}")
        counts = await data_keys_by_kek(conn)
    finally:
        await conn.close()
    print(f"current key: {keyring.current_id}")
    for kek_id, keys in counts.items():
        print(f"  {kek_id}: {keys} data keys" + (" (current)" if kek_id == keyring.current_id else ""))
    return 0 if set(counts) <= {keyring.current_id} else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m deploy.secrets", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["rotate", "status"])
    raise SystemExit(asyncio.run(main(parser.parse_args().command)))
