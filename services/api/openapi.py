"""The OpenAPI document (``/openapi.json``) as the API answers: every ``/api/v1`` operation's errors are
``application/problem+json`` (:mod:`services.api.errors`), never FastAPI's default 422 body, and any 4xx
or 5xx the operation may answer is described, not only the ones a route names."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from services.api.errors import PROBLEM_JSON

API_PREFIX = "/api/"
# FastAPI's own description of a 422, which the API never sends (errors.py answers request_invalid).
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


class FieldProblem(BaseModel):
    field: str
    code: str
    message: str


class Problem(BaseModel):
    """RFC 9457 with our ``code``; a field error lists ``errors``; a refused transition adds
    ``current_state`` and ``requested``."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    errors: list[FieldProblem] | None = None


_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_ANY_ERROR = {
    "4XX": "Refused: the problem's code and detail say why",
    "5XX": "Briefly unavailable (503 with Retry-After) or failed; the problem says which",
}


def install_problem_responses(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe errors as problem+json (built once, as FastAPI caches it)."""
    build_document = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _describe_problems(build_document())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _describe_problems(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    for path, operations in document.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = _PROBLEM_CONTENT
                    if response.get("description") == "Validation Error":
                        response["description"] = "The request is not valid: errors name each field"
            for status, description in _ANY_ERROR.items():
                responses.setdefault(status, {"description": description, "content": _PROBLEM_CONTENT})
