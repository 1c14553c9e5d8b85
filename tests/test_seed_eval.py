"""Issue 3's status and quantity accuracy floors, asserted on the real seed release scored against tests/gold.

The F1 floors live in conftest.EVAL_F1_FLOORS (asserted in test_flow). A transfer
reported by both seed texts is one row with one status (the furthest stage either
reports) and one quantity, so such a row can agree with only one text's reading
when they differ; each text's own reading is on its citations.
"""
from __future__ import annotations

import pytest

from armsledger.evaluate import score_release

# The targets; measured on the seeds: 12/14, 6/7, 6/7.
ACCURACY_FLOORS = {"event_status": 0.85, "transfer_status": 0.85, "transfer_quantity": 0.85}


@pytest.fixture(scope="module")
def seed_report(seed_release, gold_dir):
    return score_release(gold_dir, seed_release.release)


@pytest.mark.parametrize("measure", sorted(ACCURACY_FLOORS))
def test_seed_accuracy_floor(seed_report, measure):
    value = getattr(seed_report, f"{measure}_accuracy")
    assert value is not None, f"{measure}: no matched pairs to score"
    assert round(value, 3) >= ACCURACY_FLOORS[measure], f"{measure} accuracy {value:.3f} below {ACCURACY_FLOORS[measure]}"
