"""Admin routes for the router's health and incidents (issue 10, ADMIN_CONTRACT.md).

``GET /admin/status``, ``GET /admin/diagnose``, and the incident calls: ``GET /admin/incidents``,
``POST /admin/incidents/open|note|resolve``, ``GET /admin/incidents/report?id=``. The route table
matches exact paths, so identifiers travel in the body or the query string.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from routeguard.errors import InvalidRequestError
from routeguard.net.server import Request, Response
from routeguard.observability.logs import redact
from routeguard.ops.diagnosis import build_diagnosis
from routeguard.ops.status import build_status
from routeguard.server.admin_api import Route, json_body, json_response

if TYPE_CHECKING:
    from routeguard.server.app import RouteGuardApp

__all__ = ["StatusRoutes"]

_MAX_TEXT = 2000


def _text(body: dict[str, Any], key: str, *, required: bool) -> str:
    value = body.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidRequestError(f"{key}: expected a string.", param=key)
    value = value.strip()
    if required and not value:
        raise InvalidRequestError(f"{key}: required and must not be empty.", param=key)
    if len(value) > _MAX_TEXT:
        raise InvalidRequestError(f"{key}: at most {_MAX_TEXT} characters.", param=key)
    # Incident text ends up in reports and the decisions log, read by many for years.
    return redact(value)


class StatusRoutes:
    """Status, diagnosis and incidents, each behind the admin token."""

    def __init__(self, app: RouteGuardApp) -> None:
        self.app = app
        self.guard = app.admin_guard

    def table(self) -> dict[str, dict[str, Route]]:
        guard = self.guard
        return {
            "/admin/status": {"GET": guard(self.status)},
            "/admin/diagnose": {"GET": guard(self.diagnose)},
            "/admin/incidents": {"GET": guard(self.incidents)},
            "/admin/incidents/open": {"POST": guard(self.open)},
            "/admin/incidents/note": {"POST": guard(self.note)},
            "/admin/incidents/resolve": {"POST": guard(self.resolve)},
            "/admin/incidents/report": {"GET": guard(self.report)},
        }

    async def status(self, request: Request, operator: str) -> Response:
        return json_response(200, build_status(self.app, self.app.health))

    async def diagnose(self, request: Request, operator: str) -> Response:
        return json_response(200, build_diagnosis(self.app, self.app.health))

    async def incidents(self, request: Request, operator: str) -> Response:
        book = self.app.health.incidents
        return json_response(
            200,
            {
                "open": None if book.current is None else book.current.to_json(),
                "recent": [i.to_json() for i in reversed(book.recent)],
            },
        )

    async def open(self, request: Request, operator: str) -> Response:
        body = json_body(request)
        ident = _text(body, "id", required=False)
        if ident and not all(c.isalnum() or c in "-_." for c in ident):
            raise InvalidRequestError("id: letters, digits, '-', '_' and '.' only.", param="id")
        cls = _text(body, "class", required=False).upper() or None
        summary = _text(body, "summary", required=False)
        incident = self.app.health.incidents.open(
            operator, incident_id=ident or None, cls=cls, summary=summary
        )
        self.app.audit(operator, "open_incident", INCIDENT=incident.id, CLASS=incident.cls)
        return json_response(200, incident.to_json())

    async def note(self, request: Request, operator: str) -> Response:
        text = _text(json_body(request), "text", required=True)
        incident = self.app.health.incidents.note(operator, text)
        return json_response(200, incident.to_json())

    async def resolve(self, request: Request, operator: str) -> Response:
        body = json_body(request)
        cause = _text(body, "cause", required=True)
        impact = _text(body, "impact", required=True)
        prevention = _text(body, "prevention", required=False)
        incident = self.app.health.resolve(operator, cause, impact, prevention)
        answer = incident.to_json()
        answer["decision_line"] = incident.decision_line
        return json_response(200, answer)

    async def report(self, request: Request, operator: str) -> Response:
        ident = parse_qs(request.query).get("id", [""])[0]
        incident = self.app.health.incidents.find(ident or None)
        return json_response(200, self.app.health.report(incident).to_json(incident.id))
