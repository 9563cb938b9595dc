import sys
from pathlib import Path

# markdown_blocks.py sits beside the tests.
sys.path.insert(0, str(Path(__file__).parent))
