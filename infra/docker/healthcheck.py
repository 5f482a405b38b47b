#!/usr/bin/env python3
"""`tuneflow-healthcheck URL`: exit 0 when URL answers 2xx within the timeout (images ship no curl)."""

import sys
import urllib.error
import urllib.request


def main() -> int:
    url = sys.argv[1]
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 - a fixed local URL
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
