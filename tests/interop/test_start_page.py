"""The start page (this repo's static/) served by a node's universal transport.

Without a browser (tests/browser has the Chromium test): every file index.html and app.js
load is served with a content type a browser accepts (module scripts need a JavaScript MIME
type), nothing is loaded from another host, and /info?format=json has the fields app.js reads.
"""

import json
import re
import urllib.request

import pytest

from conftest import ALL_PERMISSIONS, REPO, Router, _stop_checked, free_port

STATIC = REPO / "static"


@pytest.fixture(scope="module")
def node():
    port = free_port()
    config = {
        "version": 2,
        "controller": {"options": {"title": "start page node"}},
        "workers": [
            {
                "type": "router",
                "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": ALL_PERMISSIONS}]}],
                "transports": [
                    {
                        "type": "universal",
                        "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"},
                        "websocket": {"ws": {"serializers": ["json"]}},
                        "web": {
                            "paths": {
                                "/": {"type": "static", "directory": str(STATIC)},
                                "info": {"type": "nodeinfo"},
                            }
                        },
                    }
                ],
            }
        ],
    }
    r = Router(config, name="startpage")
    r.base = f"http://127.0.0.1:{port}"
    yield r
    _stop_checked(r)


def get(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.headers.get_content_type(), resp.read()


def local_refs(html):
    """src/href values of index.html that the page loads or links to on this node."""
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    return [r for r in refs if not re.match(r"^(https?:|data:|#|mailto:)", r)]


EXPECTED_TYPES = {".js": {"text/javascript", "application/javascript"}, ".css": {"text/css"}, ".html": {"text/html"}}


def test_index_and_every_asset_served_with_a_browser_type(node):
    status, ctype, body = get(node.base + "/")
    assert status == 200 and ctype == "text/html"
    html = body.decode()
    assert body == (STATIC / "index.html").read_bytes()
    assert '<script type="module" src="app.js">' in html

    refs = local_refs(html)
    app = (STATIC / "app.js").read_text()
    refs += re.findall(r'from "\./([^"]+)"', app)  # app.js imports wamp.js
    assert {"style.css", "app.js", "wamp.js"} <= {r.lstrip("./") for r in refs}
    for ref in refs:
        if ref == "/info":
            continue
        status, ctype, body = get(f"{node.base}/{ref.lstrip('/')}")
        assert status == 200, ref
        suffix = "." + ref.rsplit(".", 1)[-1]
        assert ctype in EXPECTED_TYPES[suffix], f"{ref}: {ctype}"
        assert body == (STATIC / ref.lstrip("/")).read_bytes()


def test_nothing_is_loaded_from_another_host():
    for name in ("index.html", "app.js", "wamp.js", "style.css"):
        text = (STATIC / name).read_text()
        # resources: <script src>, <link href> of stylesheets/icons, CSS url()/@import, fetch/import
        assert not re.search(r'<(script|img|iframe)[^>]*src="https?:', text), name
        assert not re.search(r'<link[^>]*href="https?:', text), name
        assert not re.search(r"(url\(|@import)\s*['\"]?https?:", text), name
        assert not re.search(r"""(fetch|import)\s*\(?\s*["']https?:""", text), name


def test_nodeinfo_has_what_the_page_shows(node):
    status, ctype, body = get(node.base + "/info?format=json")
    assert status == 200 and ctype == "application/json"
    info = json.loads(body)
    assert info["title"] == "start page node"
    assert re.match(r"^\d+\.\d+\.\d+", info["version"])
    assert info["realms"] == ["realm1"] or [r.get("name") for r in info["realms"]] == ["realm1"]
    assert isinstance(info["uptime_seconds"], (int, float)) and info["uptime_seconds"] >= 0
    assert isinstance(info["transports"], list) and len(info["transports"]) == 1


def test_info_link_target_is_html(node):
    status, ctype, _ = get(node.base + "/info")
    assert status == 200 and ctype == "text/html"
