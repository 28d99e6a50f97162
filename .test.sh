#!/usr/bin/env bash
# this worktree's test command: its own venv and databases
cd "/work/wt/lin"
export ETL_EXPRESS_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test_lin
export ETL_EXPRESS_TEST_MYSQL_URL=mysql+pymysql://root@127.0.0.1:3306/test_lin
export ETL_EXPRESS_HOME=/tmp/etlhome_lin
export ETL_EXPRESS_REQUIRE_NATIVE=1
export PYTEST_DEBUG_TEMPROOT=/tmp/pytest_lin
mkdir -p /tmp/pytest_lin /tmp/etlhome_lin
exec .venv/bin/python -m pytest "$@"
