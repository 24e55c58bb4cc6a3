"""iMIS's REST API as the stand-in serves it: ``/token`` and the ``/api/...`` routes (``docs/imis.md``).

Every ``/api`` route depends on ``authorized``: the bearer check first (401 HttpError), then the fault
plans. Error bodies use iMIS's HttpError shape. Query-string names are case-insensitive, as iMIS's are.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from standins.imis.activities import activity_type
from standins.imis.envelopes import (
    DENIED,
    EXPANDO,
    LIST_OBJECT,
    PAGED_QUERY,
    generic_entity,
    http_error,
    paged,
    plain_value,
    prop_json,
)
from standins.imis.panels import PanelError
from standins.imis.parties import (
    COMMUNICATION_TYPES,
    LIST_COMM_TYPE,
    LIST_PARTY,
    PAGED_COMM_TYPE,
    PAGED_PARTY,
    PartyFilter,
    communication_type,
    stamp_saved,
)
from standins.imis.queries import QueryParameterError, find_query
from standins.imis.state import ImisState
from standins.imis.tokens import GrantError

router = APIRouter()


class ImisHttpError(Exception):
    """Rendered by the app as ``status`` with an HttpError body (or ``response`` when given)."""

    def __init__(self, status: int, message: str = "", response: Response | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.response = response

    def render(self) -> Response:
        if self.response is not None:
            return self.response
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(http_error(self.message), status_code=self.status, headers=headers)


def state_of(request: Request) -> ImisState:
    state: ImisState = request.app.state.imis
    return state


StateDep = Annotated[ImisState, Depends(state_of)]


async def authorized(request: Request, state: StateDep) -> ImisState:
    """The bearer check, then the fault plans; raises ImisHttpError."""
    authorization = request.headers.get("authorization")
    grant = state.tokens.check(authorization, state.now())
    if grant is None:
        raise ImisHttpError(401, DENIED)
    plan = state.faults.take(request.url.path)
    if plan is None:
        return state
    spec = plan.spec
    if spec.kind == "slow":
        await asyncio.sleep(spec.delay_seconds)
        return state
    if spec.kind == "unauthorized":
        state.tokens.revoke(grant.access_token)
        raise ImisHttpError(401, DENIED)
    if spec.kind == "rate_limited":
        headers = {"Retry-After": str(spec.retry_after)}
        raise ImisHttpError(429, response=JSONResponse(http_error("Too many requests."), 429, headers=headers))
    if spec.body == "html":
        raise ImisHttpError(500, response=HTMLResponse(_ASPNET_ERROR_PAGE, status_code=500))
    raise ImisHttpError(500, "An error has occurred.")


_ASPNET_ERROR_PAGE = (
    "<html><head><title>Runtime Error</title></head>"
    "<body><h1>Server Error in '/' Application.</h1><h2>Runtime Error</h2></body></html>"
)


Authorized = Annotated[ImisState, Depends(authorized)]


def _query_params(request: Request) -> tuple[dict[str, str], list[str]]:
    """Case-folded single-valued parameters, and every ``Parameter`` value in order."""
    single: dict[str, str] = {}
    positional: list[str] = []
    for key, value in request.query_params.multi_items():
        lowered = key.lower()
        if lowered == "parameter":
            positional.append(value)
        else:
            single.setdefault(lowered, value)
    return single, positional


def _paging(state: ImisState, params: dict[str, str]) -> tuple[int, int]:
    try:
        offset = int(params.get("offset", "0") or 0)
        limit = int(params.get("limit", "0") or 0)
    except ValueError:
        raise ImisHttpError(400, "BadRequest: ValidationError") from None
    if offset < 0:
        raise ImisHttpError(400, "BadRequest: ValidationError")
    if limit <= 0:
        limit = state.config.default_limit
    return offset, min(limit, state.config.max_limit)


@router.post("/token")
async def token(request: Request, state: StateDep) -> JSONResponse:
    form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
    try:
        body = state.tokens.grant(form, state.now())
    except GrantError as exc:
        return JSONResponse(exc.body(), status_code=400)
    return JSONResponse(body, headers={"Cache-Control": "no-cache", "Pragma": "no-cache"})


def _run_query(request: Request, state: ImisState) -> tuple[Any, list[Any], int, int]:
    params, positional = _query_params(request)
    query = find_query(params.get("queryname", ""))
    if query is None:
        raise ImisHttpError(404, "No query found at the path given, or it is not available to REST.")
    offset, limit = _paging(state, params)
    try:
        rows = state.rows(query, positional, params.get("partyid") or params.get("id"))
    except QueryParameterError as exc:
        raise ImisHttpError(400, str(exc)) from None
    return query, rows, offset, limit


def _page_response(body: dict[str, Any]) -> Response:
    """An IQA page as JSON, serialised by orjson (with the rows' prop_json fragments spliced in as they are)."""
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/api/IQA")
@router.get("/api/iqa", include_in_schema=False)
async def iqa(request: Request, state: Authorized) -> Response:
    query, rows, offset, limit = _run_query(request, state)
    state.pages_served["iqa"] = state.pages_served.get("iqa", 0) + 1
    page = rows[offset : offset + limit]
    items = []
    for number, (member, opted_out) in enumerate(page, start=offset + 1):
        properties = [prop_json("ResultRow", str(number))]
        properties.extend(prop_json(c.alias, c.read(member, opted_out)) for c in query.columns)
        items.append(generic_entity(query.entity_type, properties, party_id=member.id))
    return _page_response(paged(items, offset=offset, limit=limit, total=len(rows)))


@router.get("/api/Query")
@router.get("/api/query", include_in_schema=False)
async def query_service(request: Request, state: Authorized) -> Response:
    if not state.config.query_service:  # an older site: the route does not exist, as any unknown path
        raise ImisHttpError(404, f"No HTTP resource was found that matches the request URI '{request.url}'.")
    query, rows, offset, limit = _run_query(request, state)
    state.pages_served["query"] = state.pages_served.get("query", 0) + 1
    items = []
    for member, opted_out in rows[offset : offset + limit]:
        row: dict[str, Any] = {"$type": EXPANDO}
        for column in query.columns:
            value = column.read(member, opted_out)
            row[column.alias] = int(value) if column.alias == "ID" and isinstance(value, str) else plain_value(value)
        items.append(row)
    body = paged(items, offset=offset, limit=limit, total=len(rows), envelope=PAGED_QUERY, items_type=LIST_OBJECT)
    return _page_response(body)


@router.get("/api/CommunicationType")
async def communication_types(request: Request, state: Authorized) -> JSONResponse:
    params, _ = _query_params(request)
    offset, limit = _paging(state, params)
    entries = [communication_type(t) for t in COMMUNICATION_TYPES]
    if "issystem" in params:
        wanted = params["issystem"].removeprefix("eq:").lower() == "true"
        entries = [e for e in entries if e["IsSystem"] is wanted]
    if "reasoncode" in params:
        code = params["reasoncode"].removeprefix("eq:").lower()
        entries = [e for e in entries if e["ReasonCode"].lower() == code]
    page = entries[offset : offset + limit]
    return JSONResponse(
        paged(page, offset=offset, limit=limit, total=len(entries), envelope=PAGED_COMM_TYPE, items_type=LIST_COMM_TYPE)
    )


@router.get("/api/Party")
async def list_parties(request: Request, state: Authorized) -> JSONResponse:
    params, _ = _query_params(request)
    offset, limit = _paging(state, params)
    wanted = PartyFilter({k: v for k, v in params.items() if k not in {"offset", "limit"}})
    found = []
    for member in state.members:
        saved = state.saved_parties.get(member.id)
        if wanted.document(saved) if saved is not None else wanted.member(member):
            found.append(member.id)
    page = [state.party(party_id) for party_id in found[offset : offset + limit]]
    return JSONResponse(
        paged(page, offset=offset, limit=limit, total=len(found), envelope=PAGED_PARTY, items_type=LIST_PARTY)
    )


@router.get("/api/Party/{party_id}")
async def get_party(party_id: str, state: Authorized) -> JSONResponse:
    document = state.party(party_id)
    if document is None:
        raise ImisHttpError(404, f"Party {party_id} was not found.")
    return JSONResponse(document)


@router.put("/api/Party/{party_id}")
async def put_party(party_id: str, request: Request, state: Authorized) -> JSONResponse:
    body = await _json_body(request)
    if state.party(party_id) is None:
        state.record_write("PUT", request.url.path, 404, body)
        raise ImisHttpError(404, f"Party {party_id} was not found.")
    if (
        not isinstance(body, dict)
        or "PersonData" not in str(body.get("$type", ""))
        or str(body.get("Id", body.get("PartyId", party_id))) != party_id
    ):
        state.record_write("PUT", request.url.path, 400, body)
        raise ImisHttpError(400, "ArgumentFault: Incorrect number of identity element")
    saved = stamp_saved(body, state.utc_now())
    state.saved_parties[party_id] = saved
    state.changed()
    state.record_write("PUT", request.url.path, 200, body)
    return JSONResponse(saved)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise ImisHttpError(400, "BadRequest: ValidationError") from None


@router.post("/api/Activity")
@router.post("/api/activity", include_in_schema=False)
async def create_activity(request: Request, state: Authorized) -> JSONResponse:
    body = await _json_body(request)
    try:
        seqn = state.activities.create(body, parties=state.by_id)
    except PanelError as exc:
        state.record_write("POST", request.url.path, exc.status, body)
        raise ImisHttpError(exc.status, exc.message) from None
    state.changed()
    state.record_write("POST", request.url.path, 201, body)
    return JSONResponse(state.activities.render(seqn), status_code=201)


@router.get("/api/Activity")
@router.get("/api/activity", include_in_schema=False)
async def list_activities(request: Request, state: Authorized) -> JSONResponse:
    params, _ = _query_params(request)
    offset, limit = _paging(state, params)
    seqns = state.activities.matching(params)
    rows = [state.activities.render(s) for s in seqns[offset : offset + limit]]
    return JSONResponse(paged(rows, offset=offset, limit=limit, total=len(seqns)))


@router.get("/api/Activity/{seqn}")
@router.get("/api/activity/{seqn}", include_in_schema=False)
async def get_activity(seqn: str, state: Authorized) -> JSONResponse:
    if seqn not in state.activities.rows:
        raise ImisHttpError(404, f"No Activity exists with SEQN {seqn}.")
    return JSONResponse(state.activities.render(seqn))


@router.put("/api/Activity/{seqn}")
@router.put("/api/activity/{seqn}", include_in_schema=False)
async def put_activity(seqn: str, request: Request, state: Authorized) -> JSONResponse:
    body = await _json_body(request)
    try:
        state.activities.replace(seqn, body)
    except PanelError as exc:
        state.record_write("PUT", request.url.path, exc.status, body)
        raise ImisHttpError(exc.status, exc.message) from None
    state.changed()
    state.record_write("PUT", request.url.path, 200, body)
    return JSONResponse(state.activities.render(seqn))


@router.get("/api/ActivityType/{code}")
@router.get("/api/activitytype/{code}", include_in_schema=False)
async def get_activity_type(code: str, state: Authorized) -> JSONResponse:
    known = next((t for t in state.config.activity_types if t.lower() == code.lower()), None)
    if known is None:
        raise ImisHttpError(404, f"No ActivityType exists with code {code}.")
    return JSONResponse(activity_type(known))


def _panel(state: ImisState, name: str) -> str:
    panel = state.panels.canonical(name)
    if panel is None:
        raise ImisHttpError(404, f"No HTTP resource was found that matches the request URI '/api/{name}'.")
    return panel


@router.post("/api/{panel_name}")
async def create_panel_row(panel_name: str, request: Request, state: Authorized) -> JSONResponse:
    panel = _panel(state, panel_name)
    body = await _json_body(request)
    try:
        party_id = state.panels.create(panel, body, parties=state.by_id)
    except PanelError as exc:
        state.record_write("POST", request.url.path, exc.status, body)
        raise ImisHttpError(exc.status, exc.message) from None
    state.changed()
    state.record_write("POST", request.url.path, 201, body)
    return JSONResponse(state.panels.render(panel, party_id), status_code=201)


@router.get("/api/{panel_name}/{party_id}")
async def get_panel_row(panel_name: str, party_id: str, state: Authorized) -> JSONResponse:
    panel = _panel(state, panel_name)
    if state.panels.get(panel, party_id) is None:
        raise ImisHttpError(404, f"No {panel} row exists for {party_id}.")
    return JSONResponse(state.panels.render(panel, party_id))


@router.get("/api/{panel_name}")
async def list_panel_rows(panel_name: str, request: Request, state: Authorized) -> JSONResponse:
    panel = _panel(state, panel_name)
    params, _ = _query_params(request)
    offset, limit = _paging(state, params)
    wanted = params.get("id", "").removeprefix("eq:") or None
    ids = [wanted] if wanted is not None else sorted(state.panels.rows[panel], key=int)
    rows = [state.panels.render(panel, i) for i in ids if state.panels.get(panel, i) is not None]
    return JSONResponse(paged(rows[offset : offset + limit], offset=offset, limit=limit, total=len(rows)))


@router.put("/api/{panel_name}/{party_id}")
async def put_panel_row(panel_name: str, party_id: str, request: Request, state: Authorized) -> JSONResponse:
    panel = _panel(state, panel_name)
    body = await _json_body(request)
    try:
        state.panels.replace(panel, party_id, body)
    except PanelError as exc:
        state.record_write("PUT", request.url.path, exc.status, body)
        raise ImisHttpError(exc.status, exc.message) from None
    state.changed()
    state.record_write("PUT", request.url.path, 200, body)
    return JSONResponse(state.panels.render(panel, party_id))
