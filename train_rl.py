"""train_rl.py: not written yet (issue #6). It will stay a thin argparse front end over minireason/."""

import sys

if __name__ == "__main__":
    sys.exit("train_rl.py is not implemented yet (issue #6); see README.md for what works today.")
