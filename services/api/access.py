"""Who may call each route: the one table, checked against the routes' guards when the app is built.

Guards are FastAPI dependencies on the routes themselves (``PrincipalDep`` and the ones built on it for
signed-in callers, ``AdminDep`` for admins); this table says what each route must have. ``check_routes``
fails the app's start for a route missing from the table or guarded differently, so a new route cannot
ship without a decision about who may call it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Final

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from libs.common.errors import ConfigurationError
from services.api.deps import current_principal, require_admin


class Access(StrEnum):
    PUBLIC = "public"  # anyone: sign-in itself, health checks
    SIGNED_IN = "signed_in"  # any user or API key of the organisation (staff or admin)
    ADMIN = "admin"  # the organisation's admins and admin API keys


P, S, A = Access.PUBLIC, Access.SIGNED_IN, Access.ADMIN

ROUTE_ACCESS: Final[Mapping[tuple[str, str], Access]] = {
    # sign-in (sign-out checks the session's CSRF token itself, and works for an expired session)
    ("GET", "/sign-in"): P, ("POST", "/sign-in"): P, ("POST", "/sign-out"): P,
    ("GET", "/healthz"): P, ("GET", "/readyz"): P, ("GET", "/metrics"): P,
    # pages
    ("GET", "/"): S, ("GET", "/campaigns"): S, ("GET", "/campaigns/new"): S,
    ("GET", "/campaigns/{campaign_id}/edit"): S, ("GET", "/campaigns/{campaign_id}"): S,
    ("GET", "/suppressions"): S, ("GET", "/lists"): S, ("GET", "/lists/{list_id}"): S, ("GET", "/outbox"): S,
    ("GET", "/settings"): A,
    # campaigns
    ("POST", "/api/v1/campaigns"): S, ("GET", "/api/v1/campaigns"): S,
    ("POST", "/api/v1/campaigns/schedule-preview"): S,
    ("GET", "/api/v1/campaigns/{campaign_id}"): S, ("PATCH", "/api/v1/campaigns/{campaign_id}"): S,
    ("DELETE", "/api/v1/campaigns/{campaign_id}"): S,
    ("POST", "/api/v1/campaigns/{campaign_id}/schedule"): S, ("POST", "/api/v1/campaigns/{campaign_id}/send-now"): S,
    ("POST", "/api/v1/campaigns/{campaign_id}/pause"): S, ("POST", "/api/v1/campaigns/{campaign_id}/resume"): S,
    ("POST", "/api/v1/campaigns/{campaign_id}/cancel"): S, ("POST", "/api/v1/campaigns/{campaign_id}/archive"): S,
    ("POST", "/api/v1/campaigns/{campaign_id}/duplicate"): S,
    # approval (issue 27): signed in; the route itself checks the approver role and that the caller is no author
    ("POST", "/api/v1/campaigns/{campaign_id}/submit"): S, ("POST", "/api/v1/campaigns/{campaign_id}/approve"): S,
    ("POST", "/api/v1/campaigns/{campaign_id}/reject"): S,
    ("GET", "/api/v1/campaigns/{campaign_id}/occurrences"): S, ("GET", "/api/v1/campaigns/{campaign_id}/runs"): S,
    ("GET", "/api/v1/campaigns/{campaign_id}/runs/{run_id}/funnel"): S,
    ("GET", "/api/v1/campaigns/{campaign_id}/runs/{run_id}/recipients.csv"): S,
    ("POST", "/api/v1/campaigns/{campaign_id}/test-send"): S,
    ("POST", "/api/v1/messages/preview"): S,
    ("GET", "/api/v1/dashboard/home"): S, ("GET", "/api/v1/dashboard/sending"): S,
    # audiences and lists
    ("GET", "/api/v1/audiences"): S, ("POST", "/api/v1/audiences/describe"): S,
    ("POST", "/api/v1/audiences/preview"): S, ("POST", "/api/v1/audiences/csv"): S,
    ("GET", "/api/v1/audiences/csv/{upload_id}"): S, ("GET", "/api/v1/audiences/csv/{upload_id}/rejections.csv"): S,
    ("GET", "/api/v1/lists"): S, ("POST", "/api/v1/lists"): S, ("GET", "/api/v1/lists/{list_id}"): S,
    ("PATCH", "/api/v1/lists/{list_id}"): S, ("DELETE", "/api/v1/lists/{list_id}"): S,
    ("GET", "/api/v1/lists/{list_id}/entries"): S, ("POST", "/api/v1/lists/{list_id}/entries"): S,
    ("POST", "/api/v1/lists/{list_id}/entries/from-upload"): S, ("POST", "/api/v1/lists/{list_id}/entries/from-run"): S,
    ("POST", "/api/v1/lists/{list_id}/entries/remove"): S,
    # suppressions: anyone may look; only admins change a member's consent
    ("GET", "/api/v1/suppressions"): S, ("GET", "/api/v1/suppressions/export.csv"): S,
    ("GET", "/api/v1/suppressions/history"): S, ("GET", "/api/v1/suppressions/writebacks"): S,
    ("POST", "/api/v1/suppressions"): A, ("POST", "/api/v1/suppressions/lift"): A,
    # revocations: anyone may see the review queue; only admins decide or record one (audited)
    ("GET", "/api/v1/revocations/reviews"): S, ("POST", "/api/v1/revocations/reviews/{review_id}/decision"): A,
    ("POST", "/api/v1/revocations"): A,
    # the replies inbox: any user of the organisation reads, assigns and answers
    ("GET", "/api/v1/inbox"): S, ("GET", "/api/v1/inbox/unread"): S, ("GET", "/api/v1/inbox/{conversation_id}"): S,
    ("POST", "/api/v1/inbox/{conversation_id}/read"): S, ("POST", "/api/v1/inbox/{conversation_id}/done"): S,
    ("POST", "/api/v1/inbox/{conversation_id}/assign"): S, ("POST", "/api/v1/inbox/{conversation_id}/replies"): S,
    ("GET", "/inbox"): S, ("GET", "/inbox/{conversation_id}"): S, ("GET", "/inbox/keywords"): S,
    # keyword answers: who answers HELP, the organisation's own keywords (admins change them)
    ("GET", "/api/v1/settings/keywords"): S, ("PUT", "/api/v1/settings/keywords"): A,
    # the organisation's send window, days, holidays and marketing cap (admins change them)
    ("GET", "/api/v1/settings/send-rules"): S, ("PUT", "/api/v1/settings/send-rules"): A,
    # erasure of a member (GDPR): admins only, audited
    ("POST", "/api/v1/erasures"): A,
    # settings, users and keys
    ("GET", "/api/v1/senders"): S, ("GET", "/api/v1/me"): S,
    ("GET", "/api/v1/senders/{sender_id}/verification"): A, ("POST", "/api/v1/senders/{sender_id}/verification"): A,
    ("POST", "/api/v1/senders/{sender_id}/verification/refresh"): A,
    ("GET", "/api/v1/settings"): A, ("PATCH", "/api/v1/settings/sms-account"): A,
    ("PUT", "/api/v1/settings/sms-account/credentials"): A, ("PUT", "/api/v1/settings/sms-account/api-key"): A,
    ("DELETE", "/api/v1/settings/sms-account/api-key"): A, ("PATCH", "/api/v1/settings/country"): A,
    ("PUT", "/api/v1/settings/imis"): A, ("POST", "/api/v1/settings/imis/check"): A,
    ("PUT", "/api/v1/settings/sms-account/webhook-shared-key"): A,
    ("POST", "/api/v1/settings/sms-account/webhook-shared-key"): A,
    ("DELETE", "/api/v1/settings/sms-account/webhook-shared-key"): A,
    ("PATCH", "/api/v1/settings/general"): A, ("PATCH", "/api/v1/senders/{sender_id}"): A,
    ("GET", "/api/v1/settings/imis-writeback"): A, ("PATCH", "/api/v1/settings/imis-writeback"): A,
    ("POST", "/api/v1/settings/imis-writeback/check"): A,
    # staff test numbers: anyone may see the list (the composer offers it); only admins change it
    ("GET", "/api/v1/settings/test-numbers"): S, ("POST", "/api/v1/settings/test-numbers"): A,
    ("DELETE", "/api/v1/settings/test-numbers/{phone}"): A,
    ("GET", "/api/v1/users"): A, ("POST", "/api/v1/users"): A, ("PATCH", "/api/v1/users/{user_id}"): A,
    ("PUT", "/api/v1/users/{user_id}/password"): A,
    # the audit log: read-only, for admins
    ("GET", "/api/v1/audit-events"): A, ("GET", "/api/v1/audit-events/export.csv"): A,
    ("GET", "/api/v1/api-keys"): A, ("POST", "/api/v1/api-keys"): A, ("DELETE", "/api/v1/api-keys/{key_id}"): A,
    # outgoing signed events: admins only (an endpoint receives members' numbers and words), audited
    ("GET", "/api/v1/webhook-endpoints"): A, ("POST", "/api/v1/webhook-endpoints"): A,
    ("PATCH", "/api/v1/webhook-endpoints/{endpoint_id}"): A, ("DELETE", "/api/v1/webhook-endpoints/{endpoint_id}"): A,
    ("GET", "/api/v1/webhook-endpoints/{endpoint_id}/deliveries"): A,
    ("POST", "/api/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver"): A,
}


def guard_of(dependant: Dependant) -> Access:
    """The access a route's dependencies actually enforce."""
    calls = set(_calls(dependant))
    if require_admin in calls:
        return Access.ADMIN
    return Access.SIGNED_IN if current_principal in calls else Access.PUBLIC


def _calls(dependant: Dependant) -> Iterable[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def check_routes(routes: Iterable[tuple[str, APIRoute]]) -> None:
    """Raise ConfigurationError naming every (prefix, route) that is not in the table or is guarded otherwise."""
    problems = []
    for prefix, route in routes:
        actual = guard_of(route.dependant)
        for method in sorted(route.methods or ()):
            wanted = ROUTE_ACCESS.get((method, prefix + route.path))
            if wanted is None:
                problems.append(f"{method} {prefix}{route.path} is not in services/api/access.py")
            elif wanted is not actual:
                problems.append(f"{method} {prefix}{route.path} must be {wanted} but is guarded as {actual}")
    if problems:
        raise ConfigurationError("route_access", "; ".join(problems))
