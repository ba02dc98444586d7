"""Rules in web forms and URLs: the same fields as ``RuleSpec``, and the same errors.

A search on the browse page, the subscribe form, the live preview and the
admin's rule editor all read a rule from request parameters named as the
``RuleSpec`` fields (``query``, ``kinds``, ``publishers``, ``amount_min``...),
so "alert me about this search" is the search's own query string. A list
field may be repeated (``kinds=tender&kinds=exemption``) or written in one
box, comma-separated. ``templates/web/rule_fields.html`` draws the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from pydantic import ValidationError

from agent.errors import RuleError
from agent.rules import Node, RuleSpec

#: The list fields of ``RuleSpec``, which a form may give comma-separated.
LIST_FIELDS = tuple(
    name for name, info in RuleSpec.model_fields.items() if info.annotation == list[str]
)
#: The number fields, empty when not filled in.
NUMBER_FIELDS = tuple(
    name for name, info in RuleSpec.model_fields.items() if info.annotation == float | None
)
#: Every field a rule form has.
RULE_FIELDS = tuple(RuleSpec.model_fields)
_DEFAULTS = {
    name: info.get_default(call_default_factory=True)
    for name, info in RuleSpec.model_fields.items()
}


class Params(Protocol):
    """Query parameters or a posted form (Starlette's ``QueryParams``/``FormData``)."""

    def getlist(self, key: str) -> list[Any]:
        """Every value given for ``key``."""
        ...


@dataclass
class RuleForm:
    """A rule as a form holds it: the values given, the rule, and any errors by field."""

    spec: RuleSpec
    node: Node | None = None
    #: Error messages by field name (``query``, ``amount_min``...); ``""``: the whole rule.
    errors: dict[str, str] = field(default_factory=dict)
    #: Where in the query the error is (0-based), to mark it.
    position: int | None = None
    #: Whether any rule field was given at all.
    given: bool = False

    @property
    def ok(self) -> bool:
        """Whether the rule compiled."""
        return self.node is not None and not self.errors

    def query_string(self) -> str:
        """The rule as URL parameters: a search's link, "alert me about this search"."""
        return urlencode(rule_params(self.spec))

    def before_error(self) -> str:
        """The query up to the error's position (shown before the marked character)."""
        return self.spec.query[: self.position] if self.position is not None else ""

    def at_error(self) -> str:
        """The query character the error is at, or a space past its end."""
        if self.position is None:
            return ""
        return self.spec.query[self.position : self.position + 1] or " "

    def after_error(self) -> str:
        """The query after the error's character."""
        return self.spec.query[self.position + 1 :] if self.position is not None else ""


def read_rule(params: Params, *, require: bool = True) -> RuleForm:
    """Read and compile the rule in ``params``; errors are kept, never raised.

    With ``require`` false an empty rule is no error (a browse page with no
    filters lists everything): the form then has no ``node``.
    """
    raw = _raw(params)
    # A value equal to its default (the direction select's "either") is not a filter.
    given = any(raw.get(name) not in (None, "", [], _DEFAULTS[name]) for name in RULE_FIELDS)
    try:
        spec = RuleSpec.model_validate(raw)
    except ValidationError as exc:
        errors = {str(err["loc"][0]) if err["loc"] else "": err["msg"] for err in exc.errors()}
        clean = {k: v for k, v in raw.items() if k not in errors}
        return RuleForm(_lenient(clean), errors=errors, given=given)
    if not given and not require:
        return RuleForm(spec, given=False)
    try:
        node = spec.compile()
    except RuleError as exc:
        where = "query" if exc.position is not None else _field_named(exc.message)
        return RuleForm(spec, errors={where: exc.message}, position=exc.position, given=given)
    return RuleForm(spec, node=node, given=given)


def rule_params(spec: RuleSpec) -> list[tuple[str, str]]:
    """The URL parameters that give back ``spec`` through ``read_rule``."""
    params: list[tuple[str, str]] = []
    for name, value in spec.model_dump(exclude_defaults=True).items():
        if isinstance(value, list):
            params += [(name, str(v)) for v in value]
        elif value is not None:
            params.append((name, _number(value) if isinstance(value, float) else str(value)))
    return params


def _raw(params: Params) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for name in RULE_FIELDS:
        values = [str(v).strip() for v in params.getlist(name) if str(v).strip()]
        if name in LIST_FIELDS:
            raw[name] = [part.strip() for v in values for part in v.split(",") if part.strip()]
        elif values:
            raw[name] = values[0]
    return raw


def _lenient(raw: Mapping[str, Any]) -> RuleSpec:
    """The valid part of a form, so the page can show the rest again as given."""
    try:
        return RuleSpec.model_validate(raw)
    except ValidationError:
        return RuleSpec()


def _field_named(message: str) -> str:
    head = message.split(":", 1)[0].strip()
    return head if head in RULE_FIELDS else ""


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)
