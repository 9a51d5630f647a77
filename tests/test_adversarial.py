"""The adversarial pass in CI: every hostile input or fault gives one clear line and exit 2 (or is accepted where it
is legal), no traceback, no hang, no silent accept, no lost work. The cases: tests/adversarial_cases.py; the counts
for a closing note: benchmarks/adversarial_pass.py."""

from __future__ import annotations

import pytest

from adversarial_cases import cases, run_case

pytestmark = pytest.mark.adversarial

CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case, tmp_path):
    outcome, detail = run_case(case, tmp_path / "case")
    assert outcome == "ok", f"{case.category} / {case.name}: {outcome}: {detail}"
