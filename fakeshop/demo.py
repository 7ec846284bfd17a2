"""Demo photos for the fake shop's demo products (`python -m fakeshop --demo-photos`): a
studio-style product shot (a shaded box with a label on a white sweep), one colour per product,
so a newcomer's first import brings photos Vitrine can cut out and stage."""
import io
import random

COLOURS = ((0.9, 0.15, 0.12), (0.15, 0.35, 0.85), (0.2, 0.6, 0.3), (0.85, 0.55, 0.1), (0.5, 0.2, 0.7))


def demo_photo(number: int, size=(640, 480)) -> bytes:
    from PIL import Image, ImageDraw

    w, h = size
    rng = random.Random(number)
    r, g, b = COLOURS[number % len(COLOURS)]
    img = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(img)
    for y in range(h):  # the white sweep, a touch darker towards the floor
        v = 244 + round(8 * y / max(h - 1, 1))
        draw.line([(0, y), (w, y)], fill=(v, v, v))
    x0, y0, x1, y1 = w // 3, h // 4, 2 * w // 3, 3 * h // 4
    for x in range(x0, x1):  # the box, lit from the right
        shade = 150 + 60 * (x - x0) / max(x1 - x0 - 1, 1)
        draw.line([(x, y0), (x, y1 - 1)], fill=(round(shade * r), round(shade * g), round(shade * b)))
    draw.rectangle([x0 + 12, y0 + 30, x1 - 12, y0 + 70], fill=(240, 230, 200))
    pixels = img.load()
    for _ in range(w * h // 20):  # a little sensor noise, as a real photo has
        x, y = rng.randrange(w), rng.randrange(h)
        pr, pg, pb = pixels[x, y]
        d = rng.randint(-3, 3)
        pixels[x, y] = (min(255, max(0, pr + d)), min(255, max(0, pg + d)), min(255, max(0, pb + d)))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
