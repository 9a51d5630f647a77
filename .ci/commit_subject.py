"""commit-msg hook (.pre-commit-config.yaml): a subject line of at most 72 characters, detail in the body."""

import sys

LIMIT = 72


def main(path: str) -> int:
    with open(path, encoding="utf-8") as message:
        subject = next((line.rstrip("\n") for line in message if not line.startswith("#")), "")
    if len(subject) > LIMIT:
        print(f"the commit subject has {len(subject)} characters, at most {LIMIT}: put the detail in the body",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
