#!/usr/bin/env python3
"""Deterministic generator of synthetic meter photos for the OCR tests and benchmark.

    python3 gen_meter_photos.py OUT_DIR --seed 1 --count 150

Writes OUT_DIR/NNNN.jpg and OUT_DIR/labels.tsv with the columns
file, kind (drum | bellows | lcd), readable (1 | 0), reading ("012345.6": the digits shown,
a dot before the decimal digits; empty when unreadable), and a short note on the distortions.

Same seed, same Pillow version -> same images. Use one seed for the dev split (tuning) and
another for the test split (scored once at the end). Needs Pillow and the DejaVu fonts
(Debian fonts-dejavu-core).
"""

import argparse
import math
import os
import random

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu"]


def font(name, size):
    for d in FONT_DIRS:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return ImageFont.truetype(p, size)
    raise SystemExit(f"font {name} not found (apt-get install fonts-dejavu-core)")


DIGIT_FONTS = ["DejaVuSans-Bold.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansCondensed-Bold.ttf",
               "DejaVuSans.ttf", "DejaVuSansMono.ttf"]
BRANDS = ["Elster", "Itron", "Landis+Gyr", "Iskra", "EMH", "Pipersberg", "Kromschroder", "Actaris",
          "Siemens", "Holley", "Logarex", "easymeter"]


def rand_digits(rng, n):
    return "".join(rng.choice("0123456789") for _ in range(n))


def reading_digits(rng, n_int):
    """An integer part with realistic leading zeros (small consumption is common)."""
    lead = rng.choice([0, 0, 1, 1, 2])
    lead = min(lead, n_int - 2)
    return "0" * lead + rand_digits(rng, n_int - lead)


# --- drums -------------------------------------------------------------------

def draw_drum(face, box, digit, fnt, fg, bg, roll, next_digit):
    """One counter roll: `digit` centred, shifted up by `roll` (0..1) towards `next_digit`."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cell = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(cell)
    # subtle cylinder shading: darker top and bottom
    for yy in range(h):
        t = abs(yy - h / 2) / (h / 2)
        k = 1.0 - 0.45 * t ** 2
        c = tuple(int(v * k) for v in bg)
        d.line([(0, yy), (w, yy)], fill=c)
    pitch = h * 1.05
    off = -roll * pitch
    for dd, dy in ((digit, off), (next_digit, off + pitch)):
        tb = d.textbbox((0, 0), dd, font=fnt)
        tw, th = tb[2] - tb[0], tb[3] - tb[1]
        d.text(((w - tw) / 2 - tb[0], (h - th) / 2 - tb[1] + dy), dd, font=fnt, fill=fg)
    face.paste(cell, (x0, y0))


def drum_counter(face, rng, x, y, int_digits, dec_digits, dh, colours):
    """Draws a row of rolls; returns the window box and the label string."""
    fnt = font(rng.choice(DIGIT_FONTS[:3]), int(dh * rng.uniform(0.62, 0.78)))
    dw = int(dh * rng.uniform(0.62, 0.8))
    gap = int(dh * rng.uniform(0.05, 0.18))
    d = ImageDraw.Draw(face)
    n = len(int_digits) + len(dec_digits)
    total_w = n * dw + (n - 1) * gap
    pad = int(dh * 0.18)
    win = (x - pad, y - pad, x + total_w + pad, y + dh + pad)
    d.rectangle(win, fill=colours["window"], outline=(20, 20, 20), width=max(2, dh // 20))
    all_digits = int_digits + dec_digits
    label_digits = list(all_digits)
    for i, ch in enumerate(all_digits):
        bx = x + i * (dw + gap)
        is_dec = i >= len(int_digits)
        fg, bg = (colours["dec_fg"], colours["dec_bg"]) if is_dec else (colours["fg"], colours["bg"])
        roll = 0.0
        last = i == n - 1
        if last and rng.random() < 0.5:
            roll = rng.uniform(0.05, 0.3)  # half-rolled: the visible majority is still `ch`
        nxt = str((int(ch) + 1) % 10)
        draw_drum(face, (bx, y, bx + dw, y + dh), ch, fnt, fg, bg, roll, nxt)
    label = "".join(label_digits[: len(int_digits)])
    if dec_digits:
        label += "." + "".join(label_digits[len(int_digits):])
    return win, label


def face_drum(rng):
    W, H = rng.randint(560, 700), rng.randint(380, 480)
    base = rng.choice([(235, 235, 228), (210, 214, 220), (40, 44, 50), (225, 220, 200), (190, 195, 190)])
    face = Image.new("RGB", (W, H), base)
    d = ImageDraw.Draw(face)
    dark = sum(base) < 300
    text_col = (230, 230, 230) if dark else (25, 25, 25)
    n_int = rng.choice([5, 6, 6, 7])
    n_dec = rng.choice([0, 1, 1, 1])
    int_d = reading_digits(rng, n_int)
    dec_d = rand_digits(rng, n_dec)
    white_rolls = rng.random() < 0.25
    colours = {
        "window": (15, 15, 15),
        "fg": (20, 20, 20) if white_rolls else (240, 240, 240),
        "bg": (235, 235, 230) if white_rolls else (25, 25, 25),
        "dec_fg": (245, 245, 245),
        "dec_bg": (190, 25, 30),
    }
    dh = rng.randint(62, 86)
    n = n_int + n_dec
    approx_w = n * dh * 0.85
    x = int(max(40, (W - approx_w) / 2 + rng.randint(-30, 10)))
    y = rng.randint(110, 170)
    win, label = drum_counter(face, rng, x, y, int_d, dec_d, dh, colours)
    small = font("DejaVuSans.ttf", rng.randint(18, 24))
    big = font("DejaVuSans-Bold.ttf", rng.randint(26, 34))
    d.text((win[2] + 12, win[1] + 10), "kWh", font=big, fill=text_col)
    d.text((30, 24), rng.choice(BRANDS), font=big, fill=text_col)
    d.text((30, H - 70), f"Nr. {rand_digits(rng, 8)}", font=small, fill=text_col)
    d.text((W // 2, H - 70), f"{rng.choice([75, 96, 120, 375])} U/kWh", font=small, fill=text_col)
    d.text((30, H - 40), f"230V  10(60)A  50Hz  {rng.randint(1995, 2020)}", font=small, fill=text_col)
    if rng.random() < 0.7:  # Ferraris disc slot
        d.rectangle((W // 2 - 90, win[3] + 25, W // 2 + 90, win[3] + 45), fill=(60, 60, 60))
        d.rectangle((W // 2 - 10, win[3] + 25, W // 2 + 10, win[3] + 45), fill=(180, 20, 20))
    return face, win, label, "kWh"


def face_bellows(rng):
    W, H = rng.randint(560, 680), rng.randint(400, 500)
    base = rng.choice([(200, 200, 195), (230, 200, 60), (170, 175, 180), (215, 215, 210)])
    face = Image.new("RGB", (W, H), base)
    d = ImageDraw.Draw(face)
    # label plate
    px0, py0 = 30, 30
    d.rectangle((px0, py0, W - 30, H - 30), fill=(240, 240, 236), outline=(80, 80, 80), width=3)
    int_d = reading_digits(rng, 5)
    dec_d = rand_digits(rng, 3)
    colours = {
        "window": (10, 10, 10),
        "fg": (240, 240, 240),
        "bg": (20, 20, 22),
        "dec_fg": (245, 245, 245),
        "dec_bg": (180, 20, 25),
    }
    dh = rng.randint(56, 76)
    x = rng.randint(60, 110)
    y = rng.randint(120, 170)
    win, label = drum_counter(face, rng, x, y, int_d, dec_d, dh, colours)
    big = font("DejaVuSans-Bold.ttf", rng.randint(28, 36))
    small = font("DejaVuSans.ttf", rng.randint(17, 22))
    tc = (25, 25, 25)
    d.text((win[2] + 10, win[1] + 8), "m³", font=big, fill=tc)
    d.text((60, 50), rng.choice(BRANDS) + "  " + rng.choice(["G4", "G2.5", "G6"]), font=big, fill=tc)
    d.text((60, H - 130), f"Qmax {rng.choice([6, 10])} m³/h   Qmin 0,04 m³/h", font=small, fill=tc)
    d.text((60, H - 100), f"pmax 0,5 bar   V 1,2 dm³   {rng.randint(2000, 2022)}", font=small, fill=tc)
    d.text((60, H - 70), f"Nr. {rand_digits(rng, 2)} {rand_digits(rng, 6)}", font=small, fill=tc)
    return face, win, label, "m³"


# --- seven segments ----------------------------------------------------------

SEG = {  # a b c d e f g
    "0": "abcdef", "1": "bc", "2": "abged", "3": "abgcd", "4": "fgbc", "5": "afgcd",
    "6": "afgedc", "7": "abc", "8": "abcdefg", "9": "abcdfg",
}


def draw_7seg(d, x, y, w, h, ch, col, off_col, slant):
    t = max(3, int(w * 0.18))
    gap = max(1, t // 4)

    def P(px, py):  # slant: shift x by height
        return (x + px + slant * (h - py), y + py)

    hh = h / 2
    segs = {
        "a": [(gap + t / 2, 0), (w - gap - t / 2, 0), (w - gap - t, t), (gap + t, t)],
        "d": [(gap + t, h - t), (w - gap - t, h - t), (w - gap - t / 2, h), (gap + t / 2, h)],
        "g": [(gap + t, hh - t / 2), (w - gap - t, hh - t / 2), (w - gap - t / 2, hh),
              (w - gap - t, hh + t / 2), (gap + t, hh + t / 2), (gap + t / 2, hh)],
        "f": [(0, gap + t / 2), (t, gap + t), (t, hh - gap - t / 2), (0, hh - gap)],
        "b": [(w, gap + t / 2), (w, hh - gap), (w - t, hh - gap - t / 2), (w - t, gap + t)],
        "e": [(0, hh + gap), (t, hh + gap + t / 2), (t, h - gap - t), (0, h - gap - t / 2)],
        "c": [(w, hh + gap), (w, h - gap - t / 2), (w - t, h - gap - t), (w - t, hh + gap + t / 2)],
    }
    on = SEG.get(ch, "")
    for name, poly in segs.items():
        c = col if name in on else off_col
        if c is None:
            continue
        d.polygon([P(px, py) for px, py in poly], fill=c)


def face_lcd(rng):
    W, H = rng.randint(560, 680), rng.randint(380, 460)
    base = rng.choice([(60, 62, 66), (225, 225, 222), (30, 30, 34), (200, 205, 200)])
    face = Image.new("RGB", (W, H), base)
    d = ImageDraw.Draw(face)
    dark = sum(base) < 300
    tc = (220, 220, 220) if dark else (25, 25, 25)
    lcd_bg = rng.choice([(170, 182, 150), (190, 196, 180), (150, 170, 150), (205, 205, 195)])
    seg_col = (30, 34, 30)
    off_col = tuple(int(v * 0.93) for v in lcd_bg) if rng.random() < 0.5 else None
    n_int = rng.choice([5, 6, 6, 7])
    n_dec = rng.choice([0, 1, 1, 2])
    int_d = reading_digits(rng, n_int)
    dec_d = rand_digits(rng, n_dec)
    shown_int = int_d.lstrip("0") or "0"
    blank_lead = rng.random() < 0.6  # many meters blank the leading zeros
    digits_int = shown_int if blank_lead else int_d
    dh = rng.randint(56, 78)
    dw = int(dh * rng.uniform(0.48, 0.6))
    gap = int(dw * rng.uniform(0.25, 0.4))
    slant = rng.choice([0.0, 0.08, 0.12])
    n_cells = n_int + n_dec
    total_w = n_cells * (dw + gap) + 120
    lx0 = max(30, (W - total_w) // 2)
    ly0 = rng.randint(110, 150)
    lcd = (lx0, ly0, lx0 + total_w + 60, ly0 + dh + 60)
    d.rounded_rectangle(lcd, radius=10, fill=lcd_bg, outline=(40, 40, 40), width=4)
    # OBIS code in small digits at the left (a classic distractor: "1.8.0")
    small_seg_h = dh // 3
    sx = lx0 + 12
    for i, ch in enumerate("180"):
        draw_7seg(d, sx + i * (small_seg_h * 0.7), ly0 + 14, int(small_seg_h * 0.5), small_seg_h, ch,
                  seg_col, None, slant)
    x = lx0 + 50
    y = ly0 + 30
    cells = [" "] * (n_int - len(digits_int)) + list(digits_int) + list(dec_d)
    for i, ch in enumerate(cells):
        cx = x + i * (dw + gap)
        draw_7seg(d, cx, y, dw, dh, ch if ch != " " else "", seg_col, off_col, slant)
        if n_dec and i == n_int - 1:
            r = max(3, dw // 9)
            d.ellipse((cx + dw + gap / 2 - r, y + dh - 2 * r, cx + dw + gap / 2 + r, y + dh), fill=seg_col)
    unit_f = font("DejaVuSans-Bold.ttf", max(18, dh // 3))
    d.text((x + n_cells * (dw + gap) + 6, y + dh - dh // 3), "kWh", font=unit_f, fill=seg_col)
    win = (x - 6, y - 6, x + n_cells * (dw + gap), y + dh + 6)
    small = font("DejaVuSans.ttf", rng.randint(17, 22))
    big = font("DejaVuSans-Bold.ttf", rng.randint(24, 32))
    d.text((30, 26), rng.choice(BRANDS) + " " + rng.choice(["eHZ", "DD3", "MT175", "Q3A"]), font=big, fill=tc)
    d.text((30, H - 66), f"1 ESY {rand_digits(rng, 4)} {rand_digits(rng, 4)}", font=small, fill=tc)
    d.text((30, H - 38), f"3x230/400V 5(60)A  {rng.choice([10000, 1000])} imp/kWh", font=small, fill=tc)
    label = int_d + ("." + dec_d if n_dec else "")
    return face, win, label, "kWh"


# --- photo effects -----------------------------------------------------------

def perspective_coeffs(src, dst):
    """Coefficients for Image.transform(PERSPECTIVE): maps output points dst -> input points src."""
    A, b = [], []
    for (x, y), (u, v) in zip(dst, src):
        A.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); b.append(u)
        A.append([0, 0, 0, x, y, 1, -v * x, -v * y]); b.append(v)
    n = 8
    M = [row[:] + [bb] for row, bb in zip(A, b)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(M[r][c]))
        M[c], M[p] = M[p], M[c]
        for r in range(n):
            if r != c:
                f = M[r][c] / M[c][c]
                for k in range(c, n + 1):
                    M[r][k] -= f * M[c][k]
    return [M[i][n] / M[i][i] for i in range(n)]


def background(rng, W, H):
    c0 = [rng.randint(40, 220) for _ in range(3)]
    c1 = [min(255, max(0, v + rng.randint(-60, 60))) for v in c0]
    bg = Image.new("RGB", (W, H))
    d = ImageDraw.Draw(bg)
    for yy in range(H):
        t = yy / H
        d.line([(0, yy), (W, yy)], fill=tuple(int(a + (b - a) * t) for a, b in zip(c0, c1)))
    for _ in range(rng.randint(0, 6)):  # pipes, cables, cabinet edges
        x = rng.randint(0, W)
        w = rng.randint(8, 40)
        col = tuple(rng.randint(30, 230) for _ in range(3))
        if rng.random() < 0.5:
            d.rectangle((x, 0, x + w, H), fill=col)
        else:
            y = rng.randint(0, H)
            d.rectangle((0, y, W, y + w), fill=col)
    return bg


def glare(img, rng, strength):
    W, H = img.size
    mask = Image.new("L", (W, H), 0)
    d = ImageDraw.Draw(mask)
    cx, cy = rng.randint(0, W), rng.randint(0, H)
    rx, ry = rng.randint(W // 10, W // 3), rng.randint(H // 12, H // 4)
    d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=int(255 * strength))
    mask = mask.filter(ImageFilter.GaussianBlur(min(rx, ry) / 2))
    white = Image.new("RGB", (W, H), (255, 255, 250))
    return Image.composite(white, img, mask)


def noise(img, rng, sigma):
    W, H = img.size
    n = Image.effect_noise((W, H), sigma).convert("RGB")
    # effect_noise is centred on 128; blend shifts the mean a little, fine for a photo
    return Image.blend(img, n, min(0.35, sigma / 160))


def make_photo(rng, kind, readable):
    face, win, label, unit = {"drum": face_drum, "bellows": face_bellows, "lcd": face_lcd}[kind](rng)
    notes = []
    if not readable:
        how = rng.choice(["blur", "occlusion", "glare"])
        notes.append("unreadable:" + how)
        if how == "occlusion":
            d = ImageDraw.Draw(face)
            x0, y0, x1, y1 = win
            cover = rng.uniform(0.6, 0.85)
            if rng.random() < 0.5:
                d.rectangle((x0 - 10, y0 - 10, x0 + (x1 - x0) * cover, y1 + 10), fill=(200, 160, 140))
            else:
                d.rectangle((x1 - (x1 - x0) * cover, y0 - 10, x1 + 10, y1 + 10), fill=(200, 160, 140))
        elif how == "glare":
            x0, y0, x1, y1 = win
            m = Image.new("L", face.size, 0)
            ImageDraw.Draw(m).rectangle((x0, y0 - 5, x1, y1 + 5), fill=250)
            m = m.filter(ImageFilter.GaussianBlur(4))
            face = Image.composite(Image.new("RGB", face.size, (252, 252, 252)), face, m)
    W, H = rng.choice([(800, 600), (900, 675), (720, 960), (1024, 768)])
    bg = background(rng, W, H)
    scale = rng.uniform(0.55, 0.92) * min(W / face.width, H / face.height)
    f = face.resize((max(1, int(face.width * scale)), max(1, int(face.height * scale))), Image.BICUBIC)
    angle = rng.uniform(-18, 18) if rng.random() < 0.8 else rng.uniform(-4, 4)
    notes.append(f"rot={angle:.0f}")
    mask = Image.new("L", f.size, 255).rotate(angle, expand=True, resample=Image.BICUBIC)
    f = f.rotate(angle, expand=True, resample=Image.BICUBIC)
    px = rng.randint(0, max(0, W - f.width))
    py = rng.randint(0, max(0, H - f.height))
    bg.paste(f, (px, py), mask)
    img = bg
    # perspective: move corners by up to 9 % of the side
    k = rng.uniform(0.0, 0.09)
    notes.append(f"persp={k:.2f}")
    src = [(0, 0), (W, 0), (W, H), (0, H)]
    dst = [(x + rng.uniform(-k, k) * W, y + rng.uniform(-k, k) * H) for x, y in src]
    img = img.transform((W, H), Image.PERSPECTIVE, perspective_coeffs(src, dst), Image.BICUBIC,
                        fillcolor=tuple(rng.randint(30, 200) for _ in range(3)))
    # lighting
    if rng.random() < 0.5:
        g = rng.uniform(0.55, 1.0)
        img = img.point(lambda v: int(v * g))
        notes.append(f"dim={g:.2f}")
    if rng.random() < 0.5:
        s = rng.uniform(0.3, 0.75)
        img = glare(img, rng, s)
        notes.append(f"glare={s:.2f}")
    if not readable and "unreadable:blur" in notes:
        r = rng.uniform(7, 11)
    else:
        r = rng.choice([0, 0, rng.uniform(0.5, 1.5), rng.uniform(1.0, 2.2)])
    if r:
        img = img.filter(ImageFilter.GaussianBlur(r))
        notes.append(f"blur={r:.1f}")
    s = rng.choice([0, rng.uniform(4, 14), rng.uniform(10, 28)])
    if s:
        img = noise(img, rng, s)
        notes.append(f"noise={s:.0f}")
    return img, label, unit, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=150)
    ap.add_argument("--unreadable", type=float, default=0.12, help="fraction of unreadable photos")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    kinds = ["drum", "bellows", "lcd"]
    rows = []
    for i in range(a.count):
        kind = kinds[i % 3]
        readable = rng.random() >= a.unreadable
        img, label, unit, notes = make_photo(rng, kind, readable)
        name = f"{i:04d}.jpg"
        img.save(os.path.join(a.out, name), quality=rng.randint(55, 92))
        rows.append((name, kind, "1" if readable else "0", label if readable else "", unit, " ".join(notes)))
    with open(os.path.join(a.out, "labels.tsv"), "w") as fh:
        fh.write("file\tkind\treadable\treading\tunit\tnotes\n")
        for r in rows:
            fh.write("\t".join(r) + "\n")


if __name__ == "__main__":
    main()
