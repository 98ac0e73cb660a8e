import sys
from pathlib import Path

# the tools are scripts, not a package: make them importable by the tests
TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))
sys.path.insert(0, str(TOOLS / 'tests'))
