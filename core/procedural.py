"""Built-in procedural image concepts: the offline default image source.

A concept is one (shape, colour, texture) triple, e.g. "red striped star". 8 shapes x 6 colours x
3 textures give MAX_CONCEPTS = 144 distinct concepts; the first 48 cover every (shape, colour)
pair once, with textures spread evenly, and every run of 8 consecutive concepts has 8 shapes and
several colours, so any prefix (the default synthetic world uses 24) is visually varied. Every image is a pure
function of (seed, concept, instance): random position, scale, rotation, background colour and
gradient, brightness and pixel noise all come from a counter-based hash, so rendering a batch or
one image gives the same pixels, on any machine, with no state.

    concept_names(n_concepts=48) -> list[str]
    concept_attributes(concept) -> (shape, colour, texture)
    render(concepts (B,), instances (B,), *, size=64, seed=0) -> uint8 (B, size, size, 3)

Vectorised numpy over the whole batch (several thousand 64 px images/s on one core; see
bench/bench_features.py). Numpy only: cheap to import.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "SHAPES",
    "COLOURS",
    "TEXTURES",
    "MAX_CONCEPTS",
    "DEFAULT_CONCEPTS",
    "concept_names",
    "concept_attributes",
    "render",
    "hash_uniform",
    "item_keys",
]

SHAPES = ("circle", "square", "triangle", "star", "ring", "cross", "crescent", "heart")
COLOURS = {  # chosen for distinct hue AND distinct luminance, so greyscale shift keeps some signal
    "red": (0.86, 0.12, 0.12),
    "orange": (0.98, 0.55, 0.05),
    "yellow": (0.97, 0.92, 0.20),
    "green": (0.10, 0.62, 0.20),
    "blue": (0.12, 0.30, 0.95),
    "purple": (0.55, 0.15, 0.70),
}
TEXTURES = ("solid", "striped", "dotted")
MAX_CONCEPTS = len(SHAPES) * len(COLOURS) * len(TEXTURES)
DEFAULT_CONCEPTS = 48
RENDER_VERSION = 1  # part of the feature cache key (core.sources.ProceduralPool): bump when pixels change

_COLOUR_NAMES = tuple(COLOURS)
_COLOUR_RGB = np.array([COLOURS[c] for c in _COLOUR_NAMES], dtype=np.float32)
_NOISE_BANK = 256  # side of the shared noise tile; images crop it at a hashed offset


def _check_concept(concept: int) -> int:
    if isinstance(concept, bool) or not isinstance(concept, (int, np.integer)):
        raise TypeError(f"concept must be an int, got {type(concept).__name__}")
    if not 0 <= int(concept) < MAX_CONCEPTS:
        raise ValueError(f"concept {concept} out of range; expected 0 <= concept < {MAX_CONCEPTS}")
    return int(concept)


def _attribute_indices(concepts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """concepts (B,) -> shape, colour, texture indices (B,) each; a bijection on 0..143."""
    shape = concepts % len(SHAPES)
    colour = (concepts // len(SHAPES) + shape) % len(COLOURS)  # any prefix of 8+ concepts mixes colours
    layer = concepts // (len(SHAPES) * len(COLOURS))
    texture = (shape + colour + layer) % len(TEXTURES)
    return shape, colour, texture


def concept_attributes(concept: int) -> tuple[str, str, str]:
    """The (shape, colour, texture) names of one concept index."""
    c = _check_concept(concept)
    s, col, t = (int(v[0]) for v in _attribute_indices(np.array([c])))
    return SHAPES[s], _COLOUR_NAMES[col], TEXTURES[t]


def concept_names(n_concepts: int = DEFAULT_CONCEPTS) -> list[str]:
    """Readable names "colour texture shape" of concepts 0..n_concepts-1 (all distinct)."""
    if isinstance(n_concepts, bool) or not isinstance(n_concepts, (int, np.integer)):
        raise TypeError(f"n_concepts must be an int, got {type(n_concepts).__name__}")
    if not 1 <= n_concepts <= MAX_CONCEPTS:
        raise ValueError(f"n_concepts={n_concepts} out of range; expected 1..{MAX_CONCEPTS}")
    out = []
    for c in range(int(n_concepts)):
        shape, colour, texture = concept_attributes(c)
        out.append(f"{colour} {texture} {shape}")
    return out


def hash_uniform(seed: int, keys: np.ndarray, n: int) -> np.ndarray:
    """Counter-based uniforms: (seed, keys (B,) uint64, j) -> (B, n) float64 in [0, 1).

    SplitMix64 finaliser over a mix of the three counters: the value for one key never depends
    on the other keys in the batch, which is what makes images and shifts reproducible per item.
    """
    with np.errstate(over="ignore"):
        k = np.asarray(keys, dtype=np.uint64).reshape(-1, 1)
        j = np.arange(n, dtype=np.uint64).reshape(1, -1)
        s = np.uint64(int(seed) & 0xFFFFFFFFFFFFFFFF)
        x = (
            s * np.uint64(0x9E3779B97F4A7C15)
            + k * np.uint64(0xBF58476D1CE4E5B9)
            + (j + np.uint64(1)) * np.uint64(0x94D049BB133111EB)
        )
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def item_keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Combine two integer arrays (B,) into one uint64 key per item (order-sensitive)."""
    with np.errstate(over="ignore"):
        a64 = np.asarray(a).astype(np.uint64)
        b64 = np.asarray(b).astype(np.uint64)
        return a64 * np.uint64(0x100000001B3) ^ (b64 + np.uint64(0x632BE59BD9B4E019))


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed (256, 256, 3) float32 tile of unit Gaussian noise (same on every machine)."""
    return np.random.default_rng(20240917).standard_normal((_NOISE_BANK, _NOISE_BANK, 3)).astype(np.float32)


@lru_cache(maxsize=4)
def _noise_tile(size: int) -> np.ndarray:
    """The bank tiled periodically to (256 + size) square, so any crop at offset < 256 is a slice."""
    reps = 1 + -(-size // _NOISE_BANK)
    tiled = np.tile(_noise_bank(), (reps, reps, 1))
    return np.ascontiguousarray(tiled[: _NOISE_BANK + size, : _NOISE_BANK + size])


_TRI_NORMALS = np.array([[np.cos(a), np.sin(a)] for a in np.pi / 2 + 2 * np.pi / 3 * np.arange(3)], dtype=np.float32)
_STAR_NORMALS = np.array([[np.cos(a), np.sin(a)] for a in np.pi / 2 + 2 * np.pi / 5 * np.arange(5)], dtype=np.float32)


def _shape_distance(shape: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance-like field (negative inside) of one shape in object coordinates.

    Built from products, square roots, min and max only (no atan2 / cbrt): rendering speed.
    """
    if shape == 0:  # circle
        return np.sqrt(x * x + y * y) - 0.95
    if shape == 1:  # square
        return np.maximum(np.abs(x), np.abs(y)) - 0.75
    if shape == 2:  # triangle: intersection of 3 half-planes
        d = x * _TRI_NORMALS[0, 0] + y * _TRI_NORMALS[0, 1]
        for nx, ny in _TRI_NORMALS[1:]:
            d = np.maximum(d, x * nx + y * ny)
        return d - 0.5
    if shape == 3:  # pentagram: inside >= 4 of the 5 tip-to-tip edge lines (2nd largest < 0)
        lines = np.stack([x * nx + y * ny for nx, ny in _STAR_NORMALS]) - 0.309
        return np.partition(lines, 3, axis=0)[3]
    if shape == 4:  # ring
        return np.abs(np.sqrt(x * x + y * y) - 0.7) - 0.27
    if shape == 5:  # plus-shaped cross
        ax, ay = np.abs(x), np.abs(y)
        return np.minimum(np.maximum(ax - 0.3, ay - 0.95), np.maximum(ax - 0.95, ay - 0.3))
    if shape == 6:  # crescent
        outer = np.sqrt(x * x + y * y) - 0.95
        bite = 0.75 - np.sqrt((x - 0.45) ** 2 + (y + 0.1) ** 2)
        return np.maximum(outer, bite)
    # heart: a square standing on its corner plus two circles on its upper edges
    yy = y + 0.25
    body = np.maximum(np.abs((x - yy) * 0.7071), np.abs((x + yy) * 0.7071)) - 0.5
    lobe_l = np.sqrt((x + 0.354) ** 2 + (yy + 0.354) ** 2) - 0.5
    lobe_r = np.sqrt((x - 0.354) ** 2 + (yy + 0.354) ** 2) - 0.5
    return np.minimum(body, np.minimum(lobe_l, lobe_r))


def _texture(texture: int, x: np.ndarray, y: np.ndarray, freq: np.ndarray) -> np.ndarray:
    """Multiplicative shade in [0.4, 1] of one texture in object coordinates; freq (b,1,1)."""
    if texture == 0:
        return np.ones_like(x)
    if texture == 1:  # stripes across the object's x axis
        band = np.floor(x * freq).astype(np.int32) & 1
        return np.where(band == 1, np.float32(0.4), np.float32(1.0))
    fx = x * freq
    fy = y * freq
    fx -= np.floor(fx) + 0.5
    fy -= np.floor(fy) + 0.5
    return np.where(fx * fx + fy * fy < 0.09, np.float32(0.4), np.float32(1.0))


def render(concepts: np.ndarray, instances: np.ndarray, *, size: int = 64, seed: int = 0) -> np.ndarray:
    """Images of concepts (B,) x instances (B,) -> uint8 (B, size, size, 3).

    Pixels are a pure function of (seed, concept, instance, size).
    """
    concepts = np.asarray(concepts)
    instances = np.asarray(instances)
    if concepts.ndim != 1 or instances.shape != concepts.shape:
        raise ValueError(
            f"concepts and instances must be 1-D of equal length, got {concepts.shape} and {instances.shape}"
        )
    if concepts.size and (concepts.min() < 0 or concepts.max() >= MAX_CONCEPTS):
        raise ValueError(
            f"concept ids must lie in 0..{MAX_CONCEPTS - 1}, got min {concepts.min()} max {concepts.max()}"
        )
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 8 <= size <= 1024:
        raise ValueError(f"size must be an int in 8..1024, got {size!r}")
    s = int(size)
    out = np.empty((concepts.size, s, s, 3), dtype=np.uint8)
    chunk = max(1, 2**18 // (s * s))  # keep temporaries cache-sized: 5x faster than one big batch
    for start in range(0, concepts.size, chunk):
        stop = start + chunk
        out[start:stop] = _render_chunk(concepts[start:stop].astype(np.int64), instances[start:stop], s, seed)
    return out


def _render_chunk(concepts: np.ndarray, instances: np.ndarray, s: int, seed: int) -> np.ndarray:
    """render() on one cache-sized chunk."""
    b = concepts.size
    r = hash_uniform(seed, item_keys(concepts, instances), 16).astype(np.float32)
    shape, colour, texture = _attribute_indices(concepts)

    # pose: centre, radius (fraction of half-width), rotation
    scale = (0.38 + 0.22 * r[:, 2])[:, None, None]
    cx = ((r[:, 0] - 0.5) * 2 * (0.95 - scale[:, 0, 0]))[:, None, None]
    cy = ((r[:, 1] - 0.5) * 2 * (0.95 - scale[:, 0, 0]))[:, None, None]
    theta = (2 * np.pi * r[:, 3])[:, None, None]
    grid = (np.arange(s, dtype=np.float32) + 0.5) / s * 2 - 1
    u, v = grid[None, None, :] - cx, grid[None, :, None] - cy
    cos, sin = np.cos(theta), np.sin(theta)
    x = (u * cos + v * sin) / scale
    y = (-u * sin + v * cos) / scale

    dist = np.empty((b, s, s), dtype=np.float32)
    shade = np.empty((b, s, s), dtype=np.float32)
    freq = ((5.0 + 3.0 * r[:, 4]) / np.pi)[:, None, None].astype(np.float32)  # bands per unit
    for k in np.unique(shape):
        sel = shape == k
        dist[sel] = _shape_distance(int(k), x[sel], y[sel])
    for k in np.unique(texture):
        sel = texture == k
        shade[sel] = _texture(int(k), x[sel], y[sel], freq[sel])
    pixel = 2.0 / (s * scale)  # one pixel in object units: anti-aliased edge
    mask = np.clip(0.5 - dist / pixel, 0.0, 1.0)[..., None]

    # background: low-saturation colour + linear gradient in a random direction (in place: speed)
    grey = (0.15 + 0.7 * r[:, 6])[:, None]
    tint = (r[:, 7:10] - 0.5) * 0.35
    bg_rgb = np.clip(grey + tint, 0, 1)[:, None, None, :]
    gdir = (2 * np.pi * r[:, 10])[:, None, None]
    ramp = (np.cos(gdir) * grid[None, None, :] + np.sin(gdir) * grid[None, :, None]) * (0.2 * r[:, 11])[:, None, None]
    img = np.empty((b, s, s, 3), dtype=np.float32)
    np.add(bg_rgb, ramp[..., None], out=img)

    brightness = (0.85 + 0.25 * r[:, 5])[:, None]
    obj_rgb = np.clip(_COLOUR_RGB[colour] * brightness, 0, 1)[:, None, None, :]
    diff = obj_rgb * shade[..., None]
    diff -= img
    diff *= mask
    img += diff

    bank = _noise_tile(s)
    oy = (r[:, 12] * _NOISE_BANK).astype(np.int64)
    ox = (r[:, 13] * _NOISE_BANK).astype(np.int64)
    amp = 0.01 + 0.05 * r[:, 14]
    for n in range(b):  # contiguous crops of the tiled bank: 6x faster than a fancy-index gather
        img[n] += bank[oy[n] : oy[n] + s, ox[n] : ox[n] + s] * amp[n]
    np.clip(img, 0, 1, out=img)
    img *= 255
    img += 0.5
    return img.astype(np.uint8)
