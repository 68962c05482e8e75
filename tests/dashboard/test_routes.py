"""The dashboard's own routes with TestClient: the page and its assets are served from
the package (nothing from a CDN), the helpers need a token and agree with the registries."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from service.dashboard.routes import CSP, STATIC, plotly_js
from spaces import get_space
from tests.service.conftest import NB201

SMALL = "&".join(f"param={key}={value}" for key, value in NB201.items())


def test_page_and_assets_are_served(client: TestClient) -> None:
    page = client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"
    for name in ("app.js", "api.js", "dom.js", "charts.js", "devices.js", "searches.js",
                 "app.css"):
        assert client.get(f"/ui/static/{name}").status_code == 200, name
    plotly = client.get("/ui/vendor/plotly.min.js")
    assert plotly.status_code == 200 and "javascript" in plotly.headers["content-type"]
    assert plotly.content == plotly_js().read_bytes()


def test_nothing_comes_from_elsewhere() -> None:
    """Every script, style and module the page loads is one of the package's own files."""
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"https?://", text), f"{path.name} names an outside URL"
        for target in re.findall(r'from "\./([\w.-]+)"', text):
            assert (STATIC / target).is_file(), f"{path.name} imports a missing {target}"
    index = (STATIC / "index.html").read_text()
    for url in re.findall(r'(?:src|href)="([^"]+)"', index):
        assert url.startswith(("/ui/", "#", "data:")), url
        if url.startswith("/ui/static/"):
            assert (STATIC / url.removeprefix("/ui/static/")).is_file(), url


def test_helpers_need_a_token_and_stay_out_of_openapi(client: TestClient) -> None:
    for url in ("/ui/api/meta", "/ui/api/spaces/nb201"):
        response = client.get(url, headers={"Authorization": "Bearer hwnas_nope"})
        assert response.status_code == 401 and "bearer token" in response.json()["detail"]
    assert not any(path.startswith("/ui") or path == "/"
                   for path in client.get("/v1/openapi.json").json()["paths"])


def test_meta_agrees_with_the_registries(client: TestClient, alice: dict[str, str]) -> None:
    from latency import list_predictors
    from search.estimators import list_estimators
    from search.strategies import list_strategies

    meta = client.get("/ui/api/meta", headers=alice).json()
    assert meta["estimators"] == list_estimators()
    assert meta["strategies"] == list_strategies()
    assert meta["predictors"] == list_predictors()
    assert meta["spaces"]["nb201"]["resolution"] == 32
    assert meta["kit_formats"]["tflite"] == "tflite"


def test_space_view_counts_cells_and_decodes_archs(client: TestClient,
                                                   alice: dict[str, str]) -> None:
    space = get_space("nb201", **NB201)
    arch = space.encode(space.default())
    view = client.get(f"/ui/api/spaces/nb201?{SMALL}", headers=alice).json()
    assert view["cells"] == len(space.cells()) and view["ops"] is None
    assert [s["name"] for s in view["slots"]] == [s.name for s in space.slots]
    decoded = client.get(f"/ui/api/spaces/nb201?{SMALL}", params={"arch": arch},
                         headers=alice).json()
    assert decoded["ops"] == list(space.default().ops)
    bad = client.get(f"/ui/api/spaces/nb201?{SMALL}&arch=nope", headers=alice)
    assert bad.status_code == 422
    unknown = client.get("/ui/api/spaces/nope", headers=alice)
    assert unknown.status_code == 422 and unknown.json()["field"] == "space"
    assert client.get("/ui/api/spaces/nb201?param=depth=3",
                      headers=alice).status_code == 422


def test_static_files_stay_small() -> None:
    for path in STATIC.iterdir():
        assert len(path.read_text().splitlines()) < 500, path.name


def test_the_helpers_do_not_load_torch(tmp_path: Path) -> None:
    """The API process stays torch-free (DESIGN.md) while the dashboard's forms load."""
    script = f"""
import sys
from pathlib import Path
from fastapi.testclient import TestClient
from service.api import create_app
from tests.service.conftest import auth, fast_settings
with TestClient(create_app(fast_settings(Path({str(tmp_path)!r})), start_worker=False)) as c:
    alice = auth(c, "alice")
    for url in ("/ui/", "/ui/api/meta", "/ui/api/spaces/mbv2", "/ui/api/spaces/nb201"):
        assert c.get(url, headers=alice).status_code == 200, url
print(sorted(m for m in ("torch", "sklearn") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).parents[2])
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
