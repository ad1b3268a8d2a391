"""train_distill.py: not written yet (issue #7). It will stay a thin argparse front end over minireason/."""

import sys

if __name__ == "__main__":
    sys.exit("train_distill.py is not implemented yet (issue #7); see README.md for what works today.")
