"""Every rule of shared/clinical/screening.md, through `clinic-kiosk score`."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from kiosk.cli import cli

from .conftest import negative_visit


def score(tmp_path, visit: dict) -> dict:
    path = tmp_path / "visit.json"
    path.write_text(json.dumps(visit))
    result = CliRunner().invoke(cli, ["score", str(path)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


CASES = [
    # (answers, tier, codes)
    ({}, "none", []),
    ({"rf-saddle": True}, "emergency", ["rf-saddle"]),
    ({"rf-bladder": True}, "emergency", ["rf-bladder"]),
    ({"rf-bowel": True}, "emergency", ["rf-bowel"]),
    ({"rf-sexual": True}, "emergency", ["rf-sexual"]),
    ({"rf-weakness": True}, "emergency", ["rf-weakness"]),
    ({"rf-fever": True, "rf-infection-risk": True}, "emergency", ["rf-fever", "rf-infection-risk"]),
    ({"rf-major-trauma": True, "rf-bone-risk": True}, "emergency", ["rf-bone-risk", "rf-major-trauma"]),
    ({"rf-cancer": True, "rf-weakness": True}, "emergency", ["rf-cancer", "rf-weakness"]),
    ({"rf-both-legs": True}, "urgent", ["rf-both-legs"]),
    ({"rf-fever": True}, "urgent", ["rf-fever"]),
    ({"rf-infection-risk": True}, "urgent", ["rf-infection-risk"]),
    ({"rf-cancer": True}, "urgent", ["rf-cancer"]),
    ({"rf-weight-loss": True}, "urgent", ["rf-weight-loss"]),
    ({"rf-major-trauma": True}, "urgent", ["rf-major-trauma"]),
    ({"rf-night-pain": True}, "urgent", ["rf-night-pain"]),
    ({"rf-bone-risk": True, "pain-duration": "under-6-weeks"}, "urgent", ["rf-bone-risk"]),
    ({"rf-bone-risk": True, "pain-duration": "6-12-weeks"}, "caution", ["rf-bone-risk"]),
    ({"rf-bone-risk": True, "pain-duration": "over-12-weeks"}, "caution", ["rf-bone-risk"]),
    ({"rf-first-episode": True, "dob": "1971-11-21"}, "urgent", ["rf-first-episode"]),  # 55 today
    ({"rf-first-episode": True, "dob": "1971-11-22"}, "none", []),  # 54, birthday tomorrow
    ({"rf-first-episode": True, "dob": "2006-11-22"}, "urgent", ["rf-first-episode"]),  # 19
    ({"rf-first-episode": True, "dob": "2006-11-21"}, "none", []),  # 20 today
    ({"ci-clot": True}, "urgent", ["ci-clot"]),
    ({"ci-blood-thinner": True}, "caution", ["ci-blood-thinner"]),
    ({"ci-pregnant": True}, "caution", ["ci-pregnant"]),
    ({"ci-skin": True}, "caution", ["ci-skin"]),
    ({"ci-fracture": True}, "caution", ["ci-fracture"]),
    ({"ci-surgery": True}, "caution", ["ci-surgery"]),
    ({"ci-cancer-treatment": True}, "caution", ["ci-cancer-treatment"]),
    ({"ci-contagious": True}, "caution", ["ci-contagious"]),
    ({"ci-implant": True}, "caution", ["ci-implant"]),
    ({"ci-implant": True, "rf-night-pain": True}, "urgent", ["ci-implant", "rf-night-pain"]),
]


@pytest.mark.parametrize("answers,tier,codes", CASES, ids=[",".join(c[0]) or "negative" for c in CASES])
def test_rule(tmp_path, answers, tier, codes):
    out = score(tmp_path, negative_visit(**answers))
    assert out["tier"] == tier
    assert out["codes"] == codes


def test_first_episode_age_uses_visit_date_not_today(tmp_path):
    visit = negative_visit(**{"rf-first-episode": True, "dob": "1971-06-01"})
    visit["visit_date"] = "2026-05-31"  # 54 on the visit day
    assert score(tmp_path, visit)["tier"] == "none"
    visit["visit_date"] = "2026-06-01"  # 55
    assert score(tmp_path, visit)["tier"] == "urgent"


def test_contract_example_and_result_shape(tmp_path):
    visit = {"language": "en", "visit_date": "2026-11-21",
             "answers": {"given-name": "Ana", "dob": "1961-04-02", "rf-saddle": False, "pain-now": 6,
                         "pain-areas": ["lower-back"], "sbst-9": "moderately"}}
    out = score(tmp_path, visit)
    assert out == {"tier": "none", "codes": [],
                   "scores": {"pain-now": 6, "peg": None, "startback": None}}


def test_clinician_summary_puts_emergency_first_and_names_cord_compression(pack):
    import datetime as dt

    from kiosk.rules import evaluate

    r = evaluate(pack.rules, {"rf-cancer": True, "rf-weakness": True, "ci-skin": True}, dt.date(2026, 1, 1))
    tiers = [f.tier for f in r.summary]
    assert tiers == sorted(tiers, key=["emergency", "urgent", "caution"].index)
    assert any("metastatic spinal cord compression" in f.reason for f in r.summary)
    assert r.summary[-1].reason.startswith("wound, burn")


def test_cli_exit_codes_and_warnings(tmp_path):
    """The real console script: missing required item exits 2 naming it;
    an answer the pack does not ask is ignored with a warning."""
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"language": "en", "answers": {"given-name": "Ana"}}))
    exe = [sys.executable, "-m", "kiosk.cli"]
    r = subprocess.run([*exe, "score", str(missing)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "dob: required answer is missing" in r.stderr
    extra = tmp_path / "extra.json"
    visit = negative_visit(**{"odi-1": 3, "rf-cancer": True})
    extra.write_text(json.dumps(visit))
    r = subprocess.run([*exe, "score", str(extra)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "odi-1: not asked" in r.stderr
    assert json.loads(r.stdout)["codes"] == ["rf-cancer"]
    assert "Traceback" not in r.stderr
