"""``GET /v1/aggregate`` and ``GET /v1/facets``: groupings, time series and facets
over the events that the query parameters of ``/v1/events`` select (``q=`` included)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventcollector.aggregation import DEFAULT_TOP
from eventcollector.query_params import SPEC_PARAMS, int_param, spec_from_params
from eventcollector.server.errors import ApiError, json_response
from eventcollector.server.queries import _filters, _params
from eventcollector.server.state import ServerState

__all__ = ["routes"]


def routes(state: ServerState) -> list[Route]:
    collector = state.collector

    def split(
        request: Request, names: frozenset[str]
    ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        state.authorize(request.headers, "read")
        params, _ = _params(request)
        own = {name: params.pop(name) for name in names if name in params}
        return params, own

    async def aggregate(request: Request) -> Response:
        params, own = split(request, SPEC_PARAMS)
        query = _filters(params, state=state)
        try:
            result = await collector.aggregate(query, spec_from_params(own))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return json_response(result.to_dict())

    async def facets(request: Request) -> Response:
        params, own = split(request, frozenset({"field", "top"}))
        query = _filters(params, state=state)
        fields = [v.strip() for raw in own.get("field", []) for v in raw.split(",") if v.strip()]
        try:
            found = await collector.facets(query, fields, int_param(own, "top", DEFAULT_TOP))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return json_response({"facets": [f.to_dict() for f in found]})

    return [
        Route("/v1/aggregate", aggregate, methods=["GET"]),
        Route("/v1/facets", facets, methods=["GET"]),
    ]
