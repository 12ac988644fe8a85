"""Creates the database named by DATABASE_URL when it does not exist yet."""

import os
import sys

import psycopg
from psycopg import sql

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from config.env import parse_database_url

url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/wacampaigns")
db = parse_database_url("DATABASE_URL", url)
params = {
    "host": db["HOST"] or None,
    "port": db["PORT"] or None,
    "user": db["USER"] or None,
    "password": db["PASSWORD"] or None,
}
with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone()
    if not exists:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
        print(f"==> created database {db['NAME']}", file=sys.stderr)
