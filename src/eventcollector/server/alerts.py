"""Alert endpoints (docs/alerts.md): reading needs ``read``; adding and removing rules
needs ``admin``.

- ``GET /v1/alerts``: every rule with its source and states;
- ``POST /v1/alerts``: add or replace a rule (a JSON object with the rules file's keys);
- ``GET`` / ``DELETE /v1/alerts/{name}``;
- ``POST /v1/alerts/{name}/test``: evaluate now, notify nobody;
- ``GET /v1/alerts/{name}/history?limit=``: newest first;
- ``GET`` / ``POST /v1/silences``, ``DELETE /v1/silences/{id}``: silences (adding and
  ending one needs ``admin``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventcollector import alerts
from eventcollector.alert_rules import AlertRule
from eventcollector.server.errors import ApiError, json_response
from eventcollector.server.limits import request_json, single_params
from eventcollector.server.state import ServerState

__all__ = ["AlertService", "routes"]

_BODY_BYTES = 64 * 1024


class _Alerts:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.collector = state.collector

    async def _call(self, work: Any) -> Any:
        """Run a library call; its ValueError is a 400, its LookupError a 404."""
        try:
            return await work
        except LookupError as exc:
            raise ApiError(404, str(exc)) from None
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

    async def list_alerts(self, request: Request) -> Response:
        self.state.authorize(request.headers, "read")
        single_params(request)
        return json_response({"alerts": await self._call(alerts.list_alerts(self.collector))})

    async def get_alert(self, request: Request) -> Response:
        self.state.authorize(request.headers, "read")
        single_params(request)
        name = request.path_params["name"]
        for doc in await self._call(alerts.list_alerts(self.collector)):
            if doc["name"] == name:
                return json_response(doc)
        raise ApiError(404, f"name: no alert rule {name!r}")

    async def add_alert(self, request: Request) -> Response:
        self.state.authorize(request.headers, "admin")
        single_params(request)
        table = await request_json(request, _BODY_BYTES)
        if not isinstance(table, dict):
            raise ApiError(400, "body: expected a JSON object with the keys of a rule")
        limits = self.state.settings.alert_limits
        doc, created = await self._call(alerts.add_alert(self.collector, table, limits))
        return json_response(doc, 201 if created else 200)

    async def remove_alert(self, request: Request) -> Response:
        self.state.authorize(request.headers, "admin")
        single_params(request)
        name = request.path_params["name"]
        await self._call(alerts.remove_alert(self.collector, name))
        return json_response({"deleted": name})

    async def test_alert(self, request: Request) -> Response:
        self.state.authorize(request.headers, "read")
        single_params(request)
        return json_response(
            await self._call(alerts.test_alert(self.collector, request.path_params["name"]))
        )

    async def history(self, request: Request) -> Response:
        self.state.authorize(request.headers, "read")
        picked = single_params(request, frozenset({"limit"}))
        text = picked.get("limit", "100")
        if not text.isdigit() or len(text) > 6:
            raise ApiError(400, f"limit: expected an integer from 1 to 1000, got {text!r}")
        name = request.path_params["name"]
        records = await self._call(alerts.alert_history(self.collector, name, int(text)))
        return json_response({"rule": name, "history": records})

    async def list_silences(self, request: Request) -> Response:
        self.state.authorize(request.headers, "read")
        single_params(request)
        return json_response({"silences": await self._call(alerts.list_silences(self.collector))})

    async def add_silence(self, request: Request) -> Response:
        self.state.authorize(request.headers, "admin")
        single_params(request)
        doc = await request_json(request, _BODY_BYTES)
        if not isinstance(doc, dict):
            raise ApiError(400, "body: expected a JSON object: rule, for or until, group, reason")
        return json_response(await self._call(alerts.add_silence(self.collector, doc)), 201)

    async def end_silence(self, request: Request) -> Response:
        self.state.authorize(request.headers, "admin")
        single_params(request)
        text = request.path_params["silence_id"]
        if not text.isdigit() or len(text) > 18:
            raise ApiError(404, f"id: no silence {text[:40]!r} in force")
        await self._call(alerts.end_silence(self.collector, int(text)))
        return json_response({"ended": int(text)})


def routes(state: ServerState) -> list[Route]:
    r = _Alerts(state)
    return [
        Route("/v1/alerts", r.list_alerts, methods=["GET"]),
        Route("/v1/alerts", r.add_alert, methods=["POST"]),
        Route("/v1/alerts/{name}", r.get_alert, methods=["GET"]),
        Route("/v1/alerts/{name}", r.remove_alert, methods=["DELETE"]),
        Route("/v1/alerts/{name}/test", r.test_alert, methods=["POST"]),
        Route("/v1/alerts/{name}/history", r.history, methods=["GET"]),
        Route("/v1/silences", r.list_silences, methods=["GET"]),
        Route("/v1/silences", r.add_silence, methods=["POST"]),
        Route("/v1/silences/{silence_id}", r.end_silence, methods=["DELETE"]),
    ]


class AlertService:
    """The alert engine as a service of the app: started after the collector, stopped
    before it (``serve --alerts FILE``; rules added over HTTP run without a file)."""

    def __init__(
        self,
        file_rules: list[AlertRule] | None,
        settings: alerts.NotifySettings,
        tick: float = 1.0,
    ) -> None:
        self.file_rules = file_rules
        self.settings = settings
        self.tick = tick
        self.engine: alerts.AlertEngine | None = None

    async def start(self, state: ServerState) -> None:
        self.engine = alerts.AlertEngine(
            state.collector,
            file_rules=self.file_rules,
            notifier=alerts.Notifier(self.settings),
            tick=self.tick,
        )
        await self.engine.start()

    async def stop(self) -> None:
        if self.engine is not None:
            await self.engine.stop()
