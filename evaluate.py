"""evaluate.py: not written yet (issue #5). It will stay a thin argparse front end over minireason/."""

import sys

if __name__ == "__main__":
    sys.exit("evaluate.py is not implemented yet (issue #5); see README.md for what works today.")
