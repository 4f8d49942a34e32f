"""What recognising changed inputs costs on a resume: size + mtime_ns against a content hash.

``python -m spips_pyiqa.benchmark.resume_stamp [--pairs 1000] [--size 512]`` writes that many PNG pairs of
scikit-image photographs (with noise, so files differ) to a temporary folder and prints a
Markdown table: seconds for the stamps :func:`spips_pyiqa.evaluation.scores_file.file_stamp`
takes (one ``stat`` per file), for sha256 and BLAKE2b of every file (read from the page cache, the
best case for hashing), and for decoding the pairs with ``load_image`` (what scoring needs anyway),
measured on a sample and scaled to all pairs. Timings are wall-clock on whatever else the machine
runs: rerun on a quiet machine before quoting them.
"""

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from spips_pyiqa.data.distortions import photo
from spips_pyiqa.data.image_io import load_image
from spips_pyiqa.evaluation.scores_file import file_stamp

DECODE_SAMPLE = 50


def _write_pairs(root: Path, count: int, size: int) -> list[Path]:
    base = (photo('astronaut', size)[0].permute(1, 2, 0).numpy() * 255).astype(np.int16)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        for side in ('target', 'ref'):
            noisy = np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
            path = root / side / f'img{i:04d}.png'
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(noisy).save(path, compress_level=1)
            paths.append(path)
    return paths


def _seconds(work) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def _hash_all(paths, algorithm: str) -> None:
    for path in paths:
        hashlib.new(algorithm, path.read_bytes()).digest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pairs', type=int, default=1000, help='pairs to write (default: 1000)')
    parser.add_argument('--size', type=int, default=512, help='image side in pixels (default: 512)')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='spips_stamp_') as temporary:
        paths = _write_pairs(Path(temporary), args.pairs, args.size)
        megabytes = sum(p.stat().st_size for p in paths) / 2**20
        _hash_all(paths, 'sha256')  # warm the page cache for every method alike
        sample = paths[: 2 * DECODE_SAMPLE]
        rows = [
            ('size + mtime_ns (os.stat)', _seconds(lambda: [file_stamp(p) for p in paths])),
            ('sha256 of the bytes', _seconds(lambda: _hash_all(paths, 'sha256'))),
            ('blake2b of the bytes', _seconds(lambda: _hash_all(paths, 'blake2b'))),
            (f'decode with load_image (x{len(paths) / len(sample):.0f} of {len(sample)} files)',
             _seconds(lambda: [load_image(p) for p in sample]) * len(paths) / len(sample)),
        ]
    print(f'{args.pairs} pairs of {args.size}x{args.size} PNGs, {megabytes:.0f} MiB, page cache warm\n')
    print('| what a resume computes per file | seconds for all pairs |\n|---|---|')
    for name, seconds in rows:
        print(f'| {name} | {seconds:.3f} |')


if __name__ == '__main__':
    main()
