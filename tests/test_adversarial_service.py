"""The adversarial pass over HTTP in CI: every hostile request or upstream fault gets the service's answer (a 4xx in
OpenAI's error shape for a client's mistake, a 502/503 for the upstream's), no 500, no secret, and nothing deleted
comes back. The cases: tests/adversarial_service_cases.py; the counts: benchmarks/adversarial_pass.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adversarial_service_cases import ServiceHarness, cases, run_service_case

CASES = cases()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceHarness]:
    pytest.importorskip("fastapi")
    with ServiceHarness(tmp_path_factory.mktemp("adversarial-service")) as running:
        yield running


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_request(case, harness):
    outcome, detail = run_service_case(case, harness)
    assert outcome == "ok", f"{case.category} / {case.name}: {outcome}: {detail}"
