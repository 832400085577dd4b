"""Fuzzing in CI (issue 14): schemathesis walks the OpenAPI document a real server serves
and sends what it generates over real HTTP; no answer may be a 5xx, and every answer must
match the document (status codes, content types, schemas), so the document describes the
real contract.

Data that fits the document and data that does not (schemathesis' positive and negative
modes), bounded (`EXAMPLES` per operation and mode, derandomized) so the walk takes about a
minute in CI and fails the same way every time; set `PAYGUARD_FUZZ_EXAMPLES` to walk
further by hand. The operations are walked in one test (schemathesis' pytest plugin needs
the document at collection time, before the server exists); every failing operation is
reported.
"""

import os

import schemathesis
from apiserver import Server
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

EXAMPLES = int(os.environ.get("PAYGUARD_FUZZ_EXAMPLES", "100"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def _walk(operation: schemathesis.APIOperation, key: str, mode: GenerationMode) -> None:
    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def send(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)

    send()


def test_no_5xx_and_the_document_holds(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json")
    failures: list[str] = []
    walked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        walked += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _walk(operation, server.admin_key, mode)
            except (Exception, BaseExceptionGroup) as exc:  # name every failing operation
                failures.append(f"{operation.label} ({mode}): {exc}")
    assert walked >= 15  # the document lists every route
    assert not failures, "\n\n".join(failures)
