"""``make docs``: ``dbt docs generate`` for transform/, through Meltano (dbt-postgres).

dbt reads the warehouse's catalog, so it needs a server: ``TARGET_POSTGRES_SQLALCHEMY_URL`` if set,
else the embedded PostgreSQL in ``.pgdata`` (started for the command, as ``make demo`` does). The
marts are documented with their columns once ``make demo`` (or a daily job) has built them; on an
empty warehouse the lineage graph and the descriptions are still complete. Output:
``transform/target/index.html`` (open it, or ``meltano invoke dbt-postgres:docs-serve``).
"""

from __future__ import annotations

import json
import sys

from cc_dev import project_root
from cc_dev.meltano_runner import Meltano
from cc_dev.pg import postgres


def main() -> int:
    """Generate the docs; 0 when index.html and catalog.json were written."""
    target = project_root() / "transform" / "target"
    with postgres() as pg:
        print(f"warehouse: {pg.describe()}")
        meltano = Meltano(api_url="http://127.0.0.1:1/CCSWeb", api_key="-", database_url=pg.url)
        installed = meltano.install()
        if installed.returncode:
            print(installed.tail(), file=sys.stderr)
            return installed.returncode
        result = meltano("invoke", "dbt-postgres:docs-generate")
    if result.returncode:
        print(result.tail(60), file=sys.stderr)
        print("dbt docs generate failed", file=sys.stderr)
        return result.returncode
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    print(
        f"dbt docs generate: {len(models)} models, {len(catalog['nodes'])} relations in the "
        f"catalog ({result.seconds:.0f} s)\n{target / 'index.html'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
