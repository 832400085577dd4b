"""`/v1/entities/{kind}/{entity_id}/graph`: an entity's neighbourhood in the identity graph."""

from typing import Annotated

import msgspec
from litestar import get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, QueryParameter

from payguard.api.errors import ApiError, BadField, documented_error
from payguard.engine import Engine

Depth = Annotated[int, QueryParameter(ge=0, le=4, description="hops from the entity, 0 to 4")]


class GraphNode(msgspec.Struct, omit_defaults=True):
    """`key` is `<kind>:<id>`; ids are the tokens the graph holds, never clear numbers.
    `reported` (accounts only): named by a fraud report or chargeback."""

    key: str
    kind: str
    id: str
    distance: int
    degree: int
    hub: bool
    reported: bool | None = None


class GraphEdge(msgspec.Struct):
    """An account–entity link; times in epoch ms, `bound_at` for a bound card only."""

    source: str
    target: str
    first_seen: int
    last_seen: int
    bound_at: int | None


class Neighbourhood(msgspec.Struct):
    """The nodes within `depth` hops of `root` and the links among them (docs/graph.md)."""

    root: str
    depth: int
    found: bool
    truncated: bool
    nodes: list[GraphNode]
    edges: list[GraphEdge]


def graph_handlers(engine: Engine) -> list[HTTPRouteHandler]:
    """The graph route over `engine.neighbourhood`."""

    @get(
        "/v1/entities/{kind:str}/{entity_id:str}/graph",
        sync_to_thread=False,
        summary="An entity's neighbourhood in the identity graph",
        description=(
            "The accounts and entities within `depth` hops (default 2, at most 4) of one "
            "node, and the links among them, as the graph holds them now. `kind` is one of "
            "account, identity, phone, device, card, payee, ip; `entity_id` is the id as "
            "payguard holds it: the user_id or device_id as sent, the token (`idn_…`, "
            "`tel_…`, `pan_…`) for ID, phone and card numbers, never a clear number. Hubs "
            "(more than 50 links) are shown, not expanded; at most 300 nodes (`truncated`). "
            "An id the graph does not know answers `found: false`."
        ),
        tags=["graph"],
        responses={
            400: documented_error(BadField, "Bad depth"),
            404: documented_error(BadField, "Unknown kind"),
        },
    )
    def get_graph(kind: FromPath[str], entity_id: FromPath[str], depth: Depth = 2) -> Neighbourhood:
        try:
            found = engine.neighbourhood(kind, entity_id, depth)
        except ValueError as exc:
            raise ApiError(
                404, BadField(error="not_found", field="kind", reason=str(exc))
            ) from None
        if found is None:
            reason = "the identity graph is off (graph_chains = false)"
            raise ApiError(404, BadField(error="not_found", field="graph", reason=reason))
        return msgspec.convert(found, Neighbourhood)

    return [get_graph]
