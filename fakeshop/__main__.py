"""`python -m fakeshop --port 8765 --shop demo-shop.myshopify.com --demo-products 5 --state FILE`"""

import argparse
import signal
import threading

from fakeshop.server import FakeShop


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fakeshop", description="Fake Shopify storefront on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--shop", default="demo-shop.myshopify.com")
    parser.add_argument("--demo-products", type=int, default=5)
    parser.add_argument("--state", default=None, help="JSON file that keeps the shop across restarts")
    parser.add_argument("--token", default=None)
    parser.add_argument("--client-secret", default=None)
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demo-photos", action="store_true",
                        help="give each product without media one studio product photo (for `make run`)")
    args = parser.parse_args(argv)
    shop = FakeShop(shop=args.shop, host=args.host, port=args.port, token=args.token,
                    client_secret=args.client_secret, demo_products=args.demo_products,
                    state_file=args.state, webhook_url=args.webhook_url, seed=args.seed).start()
    if args.demo_photos:
        from fakeshop.demo import demo_photo

        for number, pid in enumerate(list(shop.products), start=1):
            if not shop.product_images(pid, ready_only=False):
                shop.add_image(pid, data=demo_photo(number), filename=f"demo-product-{number}.png",
                               alt=shop.products[pid]["title"], width=640, height=480)
    print(f"fakeshop {shop.shop} at {shop.url}", flush=True)
    print(f"  admin API:     {shop.admin_url}", flush=True)
    print(f"  access token:  {shop.token}", flush=True)
    print(f"  client id:     {shop.client_id}", flush=True)
    print(f"  client secret: {shop.client_secret}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    shop.stop()


if __name__ == "__main__":
    main()
