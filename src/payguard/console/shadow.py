"""Run a draft in shadow on live traffic before it decides anything.

A lead who publishes a draft "in shadow" gets the live ruleset unchanged plus a shadow copy
of every rule the draft adds or changes (`mode: shadow`): live decisions stay exactly as
they were, while each shadow rule records what it would have done (`decision.shadow`), and
the rules page counts its hits beside the live ones. A changed rule's copy is named
`<id>__draft`, so the live rule keeps deciding under its own id. Params and signals the
draft adds come along (a shadow rule may read them); ones the draft *changes* do not,
since they would change live rules too — publish the draft itself to change those.
Promoting is publishing the draft as a new version.
"""

from typing import Any, Final

import yaml

from payguard.ruleset.yamlload import load_yaml

DRAFT_SUFFIX: Final = "__draft"


class ShadowError(ValueError):
    """The draft's structure cannot be run in shadow (named in the message)."""


def in_shadow(draft: str, live: str) -> str:
    """The live ruleset's YAML with the draft's new and changed rules added in shadow."""
    draft_doc, live_doc = _document(draft, "draft"), _document(live, "live ruleset")
    live_rules = {rule.get("id"): rule for rule in _rules(live_doc)}
    added = [_shadow_copy(rule, rule.get("id") in live_rules) for rule in _rules(draft_doc)
             if live_rules.get(rule.get("id")) != rule]  # fmt: skip
    if not added:
        raise ShadowError("source: the draft adds or changes no rule; nothing to shadow")
    merged = dict(live_doc)
    for section in ("params", "signals"):
        new = {k: v for k, v in (draft_doc.get(section) or {}).items()
               if k not in (live_doc.get(section) or {})}  # fmt: skip
        if new:
            merged[section] = {**(live_doc.get(section) or {}), **new}
    merged["rules"] = [*_rules(live_doc), *added]
    merged["version"] = f"{live_doc.get('version', 'live')}+shadow"
    return yaml.safe_dump(merged, sort_keys=False, allow_unicode=True, width=100)


def _shadow_copy(rule: dict[str, Any], replaces_live: bool) -> dict[str, Any]:
    copy = {**rule, "mode": "shadow"}
    if replaces_live:
        copy["id"] = f"{rule['id']}{DRAFT_SUFFIX}"
    return copy


def _document(text: str, what: str) -> dict[str, Any]:
    try:
        document = load_yaml(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ShadowError(f"source: the {what} is not YAML a ruleset can be: {exc}") from None
    if not isinstance(document, dict):
        raise ShadowError(f"source: the {what} is not a mapping with `rules:`")
    return document


def _rules(document: dict[str, Any]) -> list[dict[str, Any]]:
    rules = document.get("rules") or []
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise ShadowError("source: `rules` must be a list of rules")
    return rules
