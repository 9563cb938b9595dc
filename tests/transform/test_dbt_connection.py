"""dbt's connection settings derived from the loader's URL (cc_dev.pg.Postgres.dbt_env): the demo
and the e2e tests pass them, so dbt builds where target-postgres loads. Pure logic."""

from __future__ import annotations

from cc_dev.pg import Postgres


def test_unix_socket_url_gives_the_socket_directory_as_host():
    url = "postgresql+psycopg://postgres@/postgres?host=/work/p/.pgdata"
    assert Postgres(url, embedded=True).dbt_env() == {
        "DBT_POSTGRES_HOST": "/work/p/.pgdata",
        "DBT_POSTGRES_USER": "postgres",
        "DBT_POSTGRES_DBNAME": "postgres",
    }


def test_percent_encoded_parts_are_decoded():
    url = "postgresql+psycopg://lo%40der:p%40ss%3Aw%2Frd%25@db.example.com:6543/ware%20house"
    assert Postgres(url, embedded=False).dbt_env() == {
        "DBT_POSTGRES_HOST": "db.example.com",
        "DBT_POSTGRES_PORT": "6543",
        "DBT_POSTGRES_USER": "lo@der",
        "DBT_POSTGRES_PASSWORD": "p@ss:w/rd%",
        "DBT_POSTGRES_DBNAME": "ware house",
    }
