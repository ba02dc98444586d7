"""The OpenAPI document: every route in it and nothing else, and every answer as it says.

A tour calls every operation (and its errors) against a real agent; each
answer is matched to its documented operation by method and path, its status
must be documented there, and its body must validate against the model the
document refers to, whose schema must be the component's.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from markupsafe import escape
from pydantic import BaseModel
from starlette.routing import BaseRoute, Mount, Route

from agent.web import api_schemas, api_schemas_subs
from agent.web.openapi import REF
from tests.conftest import ROOT
from tests.test_web_api_site import ADMIN_EMAIL, SOURCE, ApiSite, api_site, bearer

#: Every model the API answers with, by name.
MODELS: dict[str, type[BaseModel]] = {
    name: value
    for module in (api_schemas, api_schemas_subs)
    for name, value in vars(module).items()
    if isinstance(value, type)
    and issubclass(value, BaseModel)
    and value.__module__ == module.__name__
}
STRINGS = ROOT / "templates" / "web" / "i18n"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[ApiSite]:
    async with api_site(tmp_path, poll=False) as running:
        yield running


async def document(site: ApiSite) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{site.url}/api/openapi.json")
    assert answer.status_code == 200
    found: dict[str, Any] = answer.json()
    return found


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, METHOD, operation) for every documented operation."""
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            yield path, method.upper(), operation


def api_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path, METHOD) of every route of the app, mounts included, HEAD left out."""
    for route in routes:
        if isinstance(route, Mount):
            yield from api_routes(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":
                    yield prefix + re.sub(r"{(\w+):\w+}", r"{\1}", route.path), method


async def test_every_api_route_is_documented_and_every_documented_path_served(
    site: ApiSite,
) -> None:
    doc = await document(site)
    served = {(path, method) for path, method in api_routes(site.app.routes)}
    served = {(path, method) for path, method in served if path.startswith("/api/v1/")}
    documented = {(path, method) for path, method, _ in operations(doc)}
    assert served == documented
    assert len(documented) == 16


async def test_the_document_is_openapi_3_1_with_both_kinds_of_security(site: ApiSite) -> None:
    doc = await document(site)
    assert doc["openapi"] == "3.1.0"
    schemes = doc["components"]["securitySchemes"]
    assert schemes["manageToken"]["scheme"] == schemes["apiKey"]["scheme"] == "bearer"
    assert schemes["adminSession"] == schemes["adminSession"] | {"in": "cookie", "type": "apiKey"}
    ids = [operation["operationId"] for _, _, operation in operations(doc)]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations(doc):
        names = {name for requirement in operation["security"] for name in requirement}
        statuses = set(operation["responses"])
        if path.startswith("/api/v1/admin/"):
            assert names == {"apiKey", "adminSession"}, path
            assert {"401", "403"} <= statuses
        elif path == "/api/v1/subscription":
            assert names == {"manageToken"}
            assert {"401", "410"} <= statuses
        else:
            assert names == set(), path
        if "requestBody" in operation:
            assert {"400", "415", "422"} <= statuses, (method, path)


async def test_each_component_is_its_models_schema(site: ApiSite) -> None:
    schemas = (await document(site))["components"]["schemas"]
    for name, model in MODELS.items():
        if name not in schemas:
            continue
        modes = [
            model.model_json_schema(ref_template=REF, mode=mode)
            for mode in ("validation", "serialization")
        ]
        expected = [{k: v for k, v in schema.items() if k != "$defs"} for schema in modes]
        assert schemas[name] in expected, name


@dataclass
class Tour:
    """Calls made to the API and what came back."""

    site: ApiSite
    doc: dict[str, Any]
    seen: list[tuple[str, str, str, httpx.Response]] = field(default_factory=list)

    async def call(
        self, method: str, path: str, status: int, key: str | None = None, **kwargs: Any
    ) -> Any:
        """Make a call, expect ``status``, note its operation; return its JSON (or None)."""
        headers = {**(bearer(key) if key else {}), **kwargs.pop("headers", {})}
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.request(method, self.site.api(path), headers=headers, **kwargs)
        assert answer.status_code == status, (method, path, answer.text)
        self.seen.append((self.operation(method, path), method, path, answer))
        return answer.json() if answer.content else None

    def operation(self, method: str, path: str) -> str:
        """The documented operation that serves ``method path``."""
        full = "/api/v1" + path.split("?")[0]
        for template, verb, operation in operations(self.doc):
            pattern = "^" + re.sub(r"{\w+}", "[^/]+", template) + "$"
            if verb == method and re.match(pattern, full):
                return str(operation["operationId"])
        raise AssertionError(f"{method} {full} is not documented")


async def tour(site: ApiSite) -> Tour:
    """Call every operation, with a success and some errors."""
    trip = Tour(site, await document(site))
    key = site.api_key()
    feed = site.subscribe("feed", query="שירותי")
    site.subscribe("mail", query="שירותי", channels=["email"], addresses={"email": "t@x.org"})
    await site.agent.poll_all()
    site.mail.answers["RCPT"] = "451 4.3.0 Try again later"
    await site.agent.dispatch()
    token = site.token(feed)
    items = await trip.call("GET", "/items?per_page=3", 200)
    await trip.call("GET", "/items?query=(", 422)
    await trip.call("GET", f"/items/{items['items'][0]['id']}", 200)
    await trip.call("GET", "/items/0", 404)
    await trip.call("GET", "/sources", 200)
    new = {"rule": {"query": "מחשוב"}, "channels": ["rss"]}
    await trip.call("POST", "/subscriptions", 202, json=new)
    await trip.call("POST", "/subscriptions", 422, json={"rule": {}})
    await trip.call("POST", "/subscriptions", 415, content=b"{}")
    await trip.call("GET", "/subscription", 200, token)
    await trip.call("GET", "/subscription", 401)
    await trip.call("PATCH", "/subscription", 200, token, json={"cadence": "weekly"})
    await trip.call(
        "PATCH",
        "/subscription",
        400,
        token,
        content=b"[]",
        headers={"Content-Type": "application/json", **bearer(token)},
    )
    subs = await trip.call("GET", "/admin/subscriptions", 200, key)
    sub_id = subs["subscriptions"][0]["id"]
    await trip.call("GET", "/admin/subscriptions", 401)
    await trip.call("GET", f"/admin/subscriptions/{sub_id}", 200, key)
    await trip.call("PATCH", f"/admin/subscriptions/{sub_id}", 200, key, json={"active": False})
    await trip.call(
        "PATCH",
        f"/admin/subscriptions/{feed.id}",
        409,
        key,
        json={"name": subs["subscriptions"][0]["name"]},
    )
    deliveries = await trip.call("GET", "/admin/deliveries?status=sent", 200, key)
    delivery_id = deliveries["deliveries"][0]["id"]
    await trip.call("GET", f"/admin/deliveries/{delivery_id}", 200, key)
    await trip.call("POST", f"/admin/deliveries/{delivery_id}/retry", 409, key)
    failed = await trip.call("GET", "/admin/deliveries?channel=email", 200, key)
    await trip.call("POST", f"/admin/deliveries/{failed['deliveries'][0]['id']}/retry", 200, key)
    await trip.call("POST", f"/admin/deliveries/{delivery_id}/replay", 200, key)
    await trip.call("POST", f"/admin/deliveries/{delivery_id}/replay", 409, key)
    await trip.call("POST", f"/admin/sources/{SOURCE}/poll", 202, key)
    await trip.call("POST", "/admin/sources/nowhere/poll", 404, key)
    await trip.call("DELETE", f"/admin/subscriptions/{sub_id}", 204, key)
    await trip.call("DELETE", "/subscription", 204, token)
    await trip.call("DELETE", "/subscription", 401, token)
    return trip


async def test_every_answer_is_as_documented(site: ApiSite) -> None:
    trip = await tour(site)
    by_id = {operation["operationId"]: operation for _, _, operation in operations(trip.doc)}
    exercised: set[str] = set()
    for operation_id, method, path, answer in trip.seen:
        responses = by_id[operation_id]["responses"]
        status = str(answer.status_code)
        assert status in responses, f"{method} {path}: {status} is not documented"
        content = responses[status].get("content")
        if content is None:
            assert answer.content == b"", (method, path)
            continue
        name = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        MODELS[name].model_validate(answer.json())
        if answer.is_success:
            exercised.add(operation_id)
    exercised |= {i for i, _, _, a in trip.seen if a.status_code == 204}
    assert exercised == set(by_id), set(by_id) - exercised


# The page for people.


def strings(language: str) -> dict[str, Any]:
    with (STRINGS / language / "api.toml").open("rb") as file:
        return tomllib.load(file)


def keys(table: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for name, value in table.items():
        found |= keys(value, f"{prefix}{name}.") if isinstance(value, dict) else {prefix + name}
    return found


async def test_the_docs_strings_name_every_operation_in_every_language(site: ApiSite) -> None:
    ids = {operation["operationId"] for _, _, operation in operations(await document(site))}
    english = strings("en")
    assert set(english["op"]) == ids
    for language in ("he", "ar"):
        assert keys(strings(language)) == keys(english), language


@pytest.mark.parametrize(("language", "direction"), [("he", "rtl"), ("ar", "rtl"), ("en", "ltr")])
async def test_the_docs_page_lists_the_document_in_the_visitors_language(
    site: ApiSite, language: str, direction: str
) -> None:
    async with httpx.AsyncClient() as http:
        page = await http.get(f"{site.url}/api/docs", params={"lang": language})
    assert page.status_code == 200
    assert f'<html lang="{language}" dir="{direction}">' in page.text
    said = strings(language)
    for path, method, operation in operations(await document(site)):
        assert f"{method}</span> {path}" in page.text
        assert escape(said["op"][operation["operationId"]]) in page.text
    assert "/api/openapi.json" in page.text
    assert page.text.count("<h1>") == 1


async def test_an_admin_sees_the_docs_page_logged_in(site: ApiSite) -> None:
    site.user(ADMIN_EMAIL, admin=True)
    async with site.logged_in(ADMIN_EMAIL) as (client, csrf):
        page = await client.get("/api/docs")
    assert page.status_code == 200
    assert csrf in page.text
