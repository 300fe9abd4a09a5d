import sys
from pathlib import Path

# helpers shared by test modules (scenario_check.py)
sys.path.insert(0, str(Path(__file__).parent))
