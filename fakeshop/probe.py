"""`python -m fakeshop.probe PORT [--env]` — for `make run`: is a fake storefront on this port?

Exit 0: a fake storefront answers there (with --env, prints the shell assignments that point
Vitrine at it); 1: nothing listens on the port; 2: something else holds the port."""
import argparse
import json
import shlex
import socket
import sys
import urllib.error
import urllib.request


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fakeshop.probe")
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--env", action="store_true")
    args = parser.parse_args(argv)
    with socket.socket() as sock:
        sock.settimeout(1)
        if sock.connect_ex((args.host, args.port)) != 0:
            return 1
    url = f"http://{args.host}:{args.port}"
    try:
        with urllib.request.urlopen(f"{url}/_fake/credentials", timeout=3) as answer:
            fake = json.loads(answer.read())
        fake["shop"], fake["client_id"], fake["client_secret"]
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
        return 2
    if args.env:
        assignments = {
            "FAKESHOP_URL": url,
            "VITRINE_STOREFRONT_SHOP_URL": url,
            "VITRINE_STOREFRONT_CLIENT_ID": fake["client_id"],
            "VITRINE_STOREFRONT_CLIENT_SECRET": fake["client_secret"],
            "VITRINE_STOREFRONT_IMAGE_HOSTS": args.host,
            "VITRINE_STOREFRONT_FETCH_ALLOW_LOOPBACK": "true",
        }
        print("".join(f"export {key}={shlex.quote(value)}; " for key, value in assignments.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
