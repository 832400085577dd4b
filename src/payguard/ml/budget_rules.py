"""The rules through which the policy uses a model's score: its budget cut-offs as CEL.

The artifact chooses, per action, the `model.score` cut-off that keeps that action within
its budget of legitimate money events (`ml.thresholds`); a ruleset turns those cut-offs
into decisions. `model_challenge` steps up with factors a remote attacker does not hold
(face, hardware token); `model_review` sends the highest scores to an analyst. Neither
adds to the rules' score, so the policy's score sum stays the rules'. Phone thieves on
the owner's unlocked handset pass `face`: against them only the review stops money.
"""

from typing import Any

import yaml

MONEY_OUT = ["payment", "transfer", "withdrawal", "investment_buy"]
"""The event types a `default@…` model scores (`types.MONEY_OUT_TYPES`, in file order)."""


def model_rules(challenge: float, review: float) -> list[dict[str, Any]]:
    """`model_challenge` at the challenge cut-off and `model_review` at the review one."""
    return [
        {
            "id": "model_challenge",
            "description": "The learned score reaches the cut-off of the challenge budget.",
            "events": MONEY_OUT,
            "when": f"model.score >= {challenge!r}",
            "action": "challenge",
            "reason": "The learned risk score is high for this payment.",
            "challenge": ["face", "hardware_token"],
        },
        {
            "id": "model_review",
            "description": "The learned score reaches the cut-off of the review budget.",
            "events": MONEY_OUT,
            "when": f"model.score >= {review!r}",
            "action": "review",
            "reason": "The learned risk score is very high for this payment.",
        },
    ]


def cut_offs(thresholds: dict[str, dict[str, float]]) -> tuple[float, float]:
    """(challenge, review) cut-offs from a manifest's `thresholds`."""
    try:
        return thresholds["challenge"]["threshold"], thresholds["review"]["threshold"]
    except KeyError as exc:
        raise ValueError(f"the model has no {exc.args[0]} threshold") from None


def model_only_yaml(challenge: float, review: float) -> str:
    """A ruleset of the two model rules alone (version `model-only`)."""
    body = {"version": "model-only", "rules": model_rules(challenge, review)}
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def with_model_yaml(ruleset_yaml: str, challenge: float, review: float) -> str:
    """`ruleset_yaml` plus the two model rules, version suffixed `+model` (comments drop:
    the YAML is parsed and dumped again, so sections after `rules:` stay intact)."""
    body = yaml.safe_load(ruleset_yaml)
    body["version"] = f"{body['version']}+model"
    body["rules"] = [*body.get("rules", []), *model_rules(challenge, review)]
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
