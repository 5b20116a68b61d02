"""Requests generated from the gateway's own OpenAPI description (schemathesis): whatever they
carry, no answer is a 5xx and every answer is one the description documents, in its shape."""

from __future__ import annotations

import asyncio
import time

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api_fixtures import GatewayStack

# Per operation and mode: a bounded run (about 30 s on two busy cores), not a search.
EXAMPLES = 8
# Not positive_data_acceptance: the description cannot say which phone numbers or time zones
# exist, so some schema-valid bodies are rightly refused.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def exercise(spec: dict[str, object], base_url: str, headers: dict[str, str]) -> None:
    """Every operation, with valid and with invalid data; raises at the first failure."""
    schema = schemathesis.openapi.from_dict(spec)
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

            try:
                check()
            except hypothesis.errors.Unsatisfiable:
                # An operation without parameters or a body has no invalid request.
                if mode is not GenerationMode.NEGATIVE:
                    raise


async def test_generated_requests_get_documented_answers_and_never_a_5xx(
    gateway_stack: GatewayStack,
) -> None:
    http = gateway_stack.http
    spec = (await http.get("/openapi.json")).json()
    started = time.monotonic()
    await asyncio.to_thread(
        exercise, spec, str(http.base_url), {"Authorization": http.headers["Authorization"]}
    )
    assert time.monotonic() - started < 60
