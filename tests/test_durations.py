"""One parser for every duration parameter (_durations.py): the forms ``freshness=`` and
``reconcile_every=`` each accepted before are accepted by both, bare seconds and zero only
where they were."""

from __future__ import annotations

import datetime as dt

import pytest

import etl_express as etl
from etl_express._durations import parse_duration
from etl_express.reconcile import check_options


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("1h30m", 5400),
        ("2w", 1209600),
        ("24 h", 86400),
        ("1.5H", 5400),
        (dt.timedelta(hours=2), 7200),
    ],
)
def test_both_parameters_take_every_string_form(value, seconds):
    assert parse_duration(value, "freshness").total_seconds() == seconds
    assert check_options("p", "soft", value).total_seconds() == seconds


def test_bare_seconds_and_zero_only_where_they_were_accepted():
    assert check_options("p", "soft", 90).total_seconds() == 90
    assert check_options("p", "soft", 0) == dt.timedelta(0)  # every run
    for bad in (90, 0, "0h"):
        with pytest.raises(etl.ETLConfigError, match="freshness"):
            parse_duration(bad, "freshness")
    with pytest.raises(etl.ETLConfigError, match="must not be negative") as info:
        check_options("p", "soft", -1)
    assert "pipeline=p" in str(info.value) and "a number of seconds" in str(info.value)
    for bad in ("often", "5x", "1h soon", True):
        with pytest.raises(etl.ETLConfigError, match="reconcile_every"):
            check_options("p", "soft", bad)
    assert parse_duration(None) is None


def test_the_log_retention_of_the_airflow_task_is_a_duration_too():
    from etl_express.airflow.tasks import purge_logs

    with pytest.raises(etl.ETLConfigError, match="log retention must be positive"):
        purge_logs("nothing:here", older_than="0d")
    with pytest.raises(etl.ETLConfigError, match="log retention 'a month' is not a duration"):
        purge_logs("nothing:here", older_than="a month")
