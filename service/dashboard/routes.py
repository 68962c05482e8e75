"""The dashboard's routes: its page, the vendored Plotly.js, and two helpers for its forms.

None of them is part of the `/v1` API (they are left out of the OpenAPI document): the
page reads and writes everything through `/v1`. The helpers need a token like the API.
No route here imports torch: the estimator names are a list kept beside the registry
(`tests/dashboard/test_routes.py` checks it against `search.estimators.list_estimators`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, get_args

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict

from service.api.deps import CurrentUser
from service.api.routes.devices import Params, parse_space
from service.schemas import KIT_FORMAT, Backend
from spaces import list_spaces, space_params

STATIC = Path(__file__).parent / "static"
# Kept equal to `search.estimators.list_estimators()` by a test; importing the registry
# here would load torch into the API process for a form's drop-down.
ESTIMATORS = ("bn", "flops", "params", "random", "supernet", "zico")
# The page runs only its own scripts; Plotly sets inline styles on the charts it draws.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'self'")

router = APIRouter(include_in_schema=False)


class Meta(BaseModel):
    """What the dashboard's forms offer: spaces with their default parameters, names."""

    model_config = ConfigDict(frozen=True)

    spaces: dict[str, dict[str, int | float | str]]
    backends: list[str]
    kit_formats: dict[str, str]
    precisions: list[str]
    estimators: list[str]
    strategies: list[str]
    predictors: list[str]


class SlotView(BaseModel):
    """One searchable layer slot: its name and candidate ops."""

    model_config = ConfigDict(frozen=True)

    name: str
    choices: list[str]


class SpaceView(BaseModel):
    """A space with its parameters: its distinct cells (the LUT size) and slots, and, when
    asked, an arch of it decoded into one op per slot."""

    model_config = ConfigDict(frozen=True)

    name: str
    params: dict[str, int | float | str]
    cells: int
    slots: list[SlotView]
    ops: list[str] | None = None


def plotly_js() -> Path | None:
    """The `plotly.min.js` shipped inside the installed `plotly` package, if any."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


@router.get("/")
def root() -> RedirectResponse:
    """The service's root opens the dashboard."""
    return RedirectResponse("/ui/")


@router.get("/ui")
def ui_redirect() -> RedirectResponse:
    return RedirectResponse("/ui/")


@router.get("/ui/")
def page() -> FileResponse:
    """The single page; its scripts route by the URL's fragment (`#/devices/3`)."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers={
        "Content-Security-Policy": CSP, "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


@router.get("/ui/vendor/plotly.min.js")
def plotly() -> FileResponse:
    """Plotly.js from the `plotly` package (a dependency of the `service` extra).

    Raises:
        FileNotFoundError: The package is not installed (404 naming it).
    """
    path = plotly_js()
    if path is None:
        raise FileNotFoundError("plotly.min.js: install the `plotly` package "
                                "(pip install 'hwnas[service]') to draw the charts")
    return FileResponse(path, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/ui/api/meta", response_model=Meta)
def meta(user: CurrentUser) -> Meta:
    """Spaces (default parameters), backends, precisions, estimators, strategies,
    predictor kinds."""
    from latency import list_predictors
    from search.strategies import list_strategies

    return Meta(spaces={name: space_params(name) for name in list_spaces()},
                backends=list(get_args(Backend)), kit_formats=KIT_FORMAT,
                precisions=["fp32", "int8"], estimators=list(ESTIMATORS),
                strategies=list_strategies(), predictors=list_predictors())


@router.get("/ui/api/spaces/{name}", response_model=SpaceView)
def space(name: Annotated[str, PathParam(min_length=1, max_length=64)], user: CurrentUser,
          param: Params = None,
          arch: Annotated[str | None, Query(max_length=4096)] = None) -> SpaceView:
    """SPACE with `param=KEY=VALUE` parameters: cells, slots, and `arch` decoded.

    Raises:
        UnknownSpaceError, ValueError, ArchError: Unknown space, bad parameter or arch
            (422 naming it).
    """
    from spaces import get_space

    canonical, params = parse_space(name, param)
    built = get_space(canonical, **params)
    ops = list(built.decode(arch).ops) if arch is not None else None
    return SpaceView(name=canonical, params=params, cells=len(built.cells()),
                     slots=[SlotView(name=s.name, choices=list(s.choices))
                            for s in built.slots], ops=ops)
