"""Write the OpenAPI 3.1 document of this deployment to a file (or stdout).

    python scripts/export_openapi.py [--out openapi.json]

Builds the app from the environment and `.env` exactly as the server does, so the limits
in the document (MAX_PROMPT_LENGTH, BATCH_MAX_ITEMS, the task types, PUBLIC_URL as the
server URL) are this deployment's, and the file equals what GET /api/v1/openapi.json
answers. For client generators and API gateways that want a file, not a URL.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from backend import create_app
from backend.openapi import build_spec
from backend.settings import ConfigurationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="-", help="output file (default: stdout)")
    args = parser.parse_args(argv)
    try:
        app = create_app()
    except (ConfigurationError, ValueError) as exc:
        parser.error(f"cannot build the app from this environment: {exc}")
    text = json.dumps(build_spec(app), indent=2, ensure_ascii=False) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
