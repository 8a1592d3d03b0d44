"""The pure rules of sync: back-off, reading the hub's answers, retention."""

import datetime as dt

import pytest

from kiosk.sync import HubUnreachable, TokenRefused, backoff_delay, purge_before, read_outcome


def test_no_wait_before_the_first_failure():
    assert backoff_delay(0, rand=0.9) == 0.0


def test_waits_double_with_each_failure_until_the_cap():
    lows = [backoff_delay(n, rand=0.0, base_s=1.0, cap_s=60.0) for n in range(1, 10)]
    assert lows == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


@pytest.mark.parametrize("failures", [1, 3, 8, 50, 10_000])
def test_jitter_stays_between_half_and_all_of_the_step(failures):
    step = min(300.0, 2.0 ** (min(failures, 60) - 1))
    for rand in (0.0, 0.25, 0.5, 0.999, 1.0):
        delay = backoff_delay(failures, rand=rand, base_s=1.0, cap_s=300.0)
        assert step / 2 <= delay <= step
    assert backoff_delay(failures, rand=0.0) < backoff_delay(failures, rand=0.99)


def test_kiosks_that_failed_together_spread_out():
    import random

    rng = random.Random(7)
    delays = {round(backoff_delay(6, rand=rng.random()), 3) for _ in range(20)}
    assert len(delays) > 15


def test_retention_cutoff():
    now = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)
    assert purge_before(now, 0) == "2026-11-21T12:00:00.000+00:00"
    assert purge_before(now, 3600) == "2026-11-21T11:00:00.000+00:00"


IDS = ["a", "b", "c"]


def test_acknowledged_records_are_the_ones_the_hub_stored_or_already_had():
    body = {"results": [{"id": "a", "status": "stored"}, {"id": "b", "status": "duplicate"},
                        {"id": "zzz", "status": "stored"}]}
    out = read_outcome(200, body, IDS)
    assert out.acked == ["a", "b"]
    assert not out.rejected


def test_refused_records_are_set_aside_by_id():
    out = read_outcome(409, {"detail": "x", "ids": ["b"]}, IDS)
    assert out.rejected == ["b"] and not out.acked


def test_a_batch_refused_as_a_whole_is_split_and_a_single_record_set_aside():
    assert read_outcome(413, {"detail": "too big"}, IDS).split
    assert read_outcome(413, {"detail": "too big"}, ["a"]).rejected == ["a"]


@pytest.mark.parametrize("status", [502, 503, 504, 429])
def test_a_hub_that_is_away_or_busy_means_try_later(status):
    with pytest.raises(HubUnreachable):
        read_outcome(status, None, IDS)


@pytest.mark.parametrize("status", [500, 501, 507])
def test_a_hub_that_fails_on_a_batch_is_told_apart_from_one_that_is_away(status):
    out = read_outcome(status, {"detail": "Internal Server Error"}, IDS)
    assert out.failed and not (out.acked or out.rejected)


def test_revoked_token_says_enroll_again():
    with pytest.raises(TokenRefused, match="enroll again"):
        read_outcome(401, {"detail": "revoked"}, IDS)
