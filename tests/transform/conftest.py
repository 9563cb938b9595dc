import sys
from pathlib import Path

# staging_fixture.py and transform_dbt.py sit beside the tests.
sys.path.insert(0, str(Path(__file__).parent))
