"""The dashboard's pages. Until the dashboard issue lands, Home says what is running."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["dashboard"])

_HOME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Textpulse</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;color:#1f2933}
h1{color:#0b6e4f}</style></head>
<body><h1>Textpulse</h1>
<p>The stack is up: scheduler, audience, dispatcher, opt-out and API services are running on
Apache Kafka and PostgreSQL. The dashboard (Home, Campaigns, Settings) arrives with its issue.</p>
<p>Service health: <a href="/readyz">/readyz</a></p></body></html>"""


@router.get("/", response_class=HTMLResponse)
async def home() -> str:
    return _HOME
