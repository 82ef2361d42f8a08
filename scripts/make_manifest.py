"""Write the Excel add-in manifest for a deployment.

    python scripts/make_manifest.py --url https://you.example.com [--namespace LLM]
        [--out manifest.xml] [--allow-http]

Uses the same `render_manifest` as the server's /addin/manifest.xml, so a file made here and the
one a running server hands out are identical. `--out -` prints to stdout. Office only loads add-ins
over https, except from localhost: any other http URL is refused unless --allow-http is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from backend.addin import render_manifest

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="public URL of the FlaskLLM server")
    parser.add_argument("--namespace", default="LLM", help="custom-function namespace (LLM)")
    parser.add_argument("--out", default="manifest.xml", help="output file, - for stdout")
    parser.add_argument("--allow-http", action="store_true", help="allow a non-local http URL")
    args = parser.parse_args(argv)

    parts = urlsplit(args.url)
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS and not args.allow_http:
        parser.error("Office loads add-ins only over https (http is fine for localhost)")
    try:
        xml = render_manifest(args.url, args.namespace)
    except ValueError as exc:
        parser.error(str(exc))
    if args.out == "-":
        sys.stdout.write(xml)
    else:
        Path(args.out).write_text(xml, encoding="utf-8")
        print(f"wrote {args.out} for {args.url} (namespace {args.namespace})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
