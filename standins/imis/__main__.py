"""``python -m standins.imis --port 8090 --dataset full``: run the iMIS stand-in as a process.

Every flag can also come from an ``IMIS_STANDIN_<FLAG>`` environment variable (``IMIS_STANDIN_PORT``...).
"""

from __future__ import annotations

import argparse
import gc
import os

from libs.common.logging import configure_logging
from standins.imis.app import create_app
from standins.imis.config import ImisConfig
from standins.serving import serve_forever


def _env(name: str, default: str) -> str:
    return os.environ.get(f"IMIS_STANDIN_{name}", default)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = ImisConfig()
    p = argparse.ArgumentParser(prog="python -m standins.imis", description="Local iMIS REST API stand-in.")
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("PORT", "8090")), help="0 picks a free port")
    p.add_argument("--dataset", default=_env("DATASET", d.dataset), help="small | full | <member count>")
    p.add_argument("--seed", type=int, default=int(_env("SEED", str(d.seed))))
    p.add_argument("--username", default=_env("USERNAME", d.username))
    p.add_argument("--password", default=_env("PASSWORD", d.password))
    p.add_argument("--client-id", default=_env("CLIENT_ID", d.client_id or ""))
    p.add_argument("--client-secret", default=_env("CLIENT_SECRET", d.client_secret or ""))
    p.add_argument("--expires-in", type=int, default=int(_env("EXPIRES_IN", str(d.expires_in))))
    p.add_argument("--max-limit", type=int, default=int(_env("MAX_LIMIT", str(d.max_limit))))
    p.add_argument(
        "--require-eq-prefix",
        action="store_true",
        default=_env("REQUIRE_EQ_PREFIX", "") == "1",
        help="refuse Parameter values without eq:, as some sites do",
    )
    p.add_argument(
        "--no-query-service",
        dest="query_service",
        action="store_false",
        default=_env("QUERY_SERVICE", "1") != "0",
        help="play a site older than iMIS 20.3.77: no /api/Query, only /api/IQA",
    )
    p.add_argument("--log-format", choices=("json", "text"), default=_env("LOG_FORMAT", "text"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("imis-standin", fmt=args.log_format)
    config = ImisConfig(
        username=args.username,
        password=args.password,
        client_id=args.client_id or None,
        client_secret=args.client_secret or None,
        expires_in=args.expires_in,
        dataset=args.dataset,
        seed=args.seed,
        max_limit=args.max_limit,
        require_eq_prefix=args.require_eq_prefix,
        query_service=args.query_service,
    )
    app = create_app(config)
    # The data set (1,250,000 members for a million-row IQA) never changes: frozen, the cyclic collector
    # stops walking it, and pages of dicts are collected seldom instead of every 700 allocations.
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)
    serve_forever(app, name="imis-standin", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
