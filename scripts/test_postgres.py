"""The PostgreSQL server of scripts/with-postgres.sh, for the harnesses."""
import os
import subprocess
import sys
import time


def fresh_database(script, prefix):
    """A new database on the server of $BELFRY_TEST_POSTGRES_URL; its URL. Exits with a hint
    when the script does not run under scripts/with-postgres.sh."""
    admin = os.environ.get("BELFRY_TEST_POSTGRES_URL")
    if not admin:
        sys.exit(f"{script}: PostgreSQL measurements run under scripts/with-postgres.sh")
    name = f"{prefix}_{int(time.time())}"
    subprocess.run(["psql", "-qX", admin, "-c", f"CREATE DATABASE {name}"], check=True)
    return admin.replace("/postgres?", f"/{name}?")
