"""MOS training: prepare-mos (scene-wise splits, refused bad data), the pairwise preference loss,
the heads prior, label orientation, and a YAML training run through pyiqa's loop on a
KADID-10k-layout fixture whose checkpoint reloads through ``create_metric``."""

import csv
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import pyiqa
from spips_pyiqa.archs.quality_heads import QualityHeads
from spips_pyiqa.cli.prepare_mos import cli as prepare_mos
from spips_pyiqa.data.distortions import distort, photo
from fixtures.mos_fixture import make_fr_fixture
from spips_pyiqa.data.mos_prepare import MosDataError, check_scene_split, read_scores, write_mos_meta_info
from spips_pyiqa.losses.mos_losses import HeadsPrior, PairwisePreferenceLoss, pairwise_preference_loss
from spips_pyiqa.models.spips_mos_model import _check_split, label_sign

REPO = Path(__file__).resolve().parents[1]


# --- prepare-mos ----------------------------------------------------------------------------------
def _folder(tmp_path: Path, rows: list[tuple[str, str, str]], scenes=('astronaut', 'coffee', 'chelsea')) -> Path:
    """Images of ``scenes`` (reference + 2 distortions each) and a scores.csv with ``rows``."""
    from PIL import Image

    root = tmp_path / 'data'
    for scene in scenes:
        for name, image in ((f'ref/{scene}.png', photo(scene, 64)),
                            (f'dist/{scene}_1.png', distort(photo(scene, 64), 'noise', 1)),
                            (f'dist/{scene}_2.png', distort(photo(scene, 64), 'blur', 2))):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype('uint8')).save(root / name)
    with (root / 'scores.csv').open('w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(['dist_img', 'ref_img', 'dmos'])
        writer.writerows(rows)
    return root


def _good_rows(scenes=('astronaut', 'coffee', 'chelsea')):
    return [(f'dist/{s}_{k}.png', f'ref/{s}.png', str(10 * k + i)) for i, s in enumerate(scenes) for k in (1, 2)]


def test_prepare_mos_writes_pyiqa_meta_info_and_leave_one_scene_out_splits(tmp_path, capsys):
    root = _folder(tmp_path, _good_rows())
    assert prepare_mos([str(root), '--name', 'tiny', '--out', str(tmp_path / 'meta')]) == 0
    assert 'held-out scenes' in capsys.readouterr().out
    with (tmp_path / 'meta' / 'meta_info_tiny.csv').open() as handle:
        meta = list(csv.reader(handle))
    assert meta[0] == ['ref_name', 'dist_name', 'mos', 'scene'] and len(meta) == 7
    splits = pickle.loads((tmp_path / 'meta' / 'tiny_scene_splits.pkl').read_bytes())
    scenes = [row[3] for row in meta[1:]]
    assert sorted(splits) == [1, 2, 3]
    for split in splits.values():
        assert sorted(split['train'] + split['val']) == list(range(6))
        assert len({scenes[i] for i in split['val']}) == 1  # exactly one scene held out
        assert not {scenes[i] for i in split['train']} & {scenes[i] for i in split['val']}
    # pyiqa's own dataset reads what was written, split by split
    from pyiqa.data import build_dataset
    dataset = build_dataset({'name': 'tiny', 'type': 'GeneralFRDataset', 'dataroot_target': str(root),
                             'meta_info_file': str(tmp_path / 'meta' / 'meta_info_tiny.csv'),
                             'split_file': str(tmp_path / 'meta' / 'tiny_scene_splits.pkl'),
                             'split_index': 2, 'phase': 'val'})
    assert len(dataset) == 2 and float(dataset[0]['mos_label']) == float(meta[1 + splits[2]['val'][0]][2])


@pytest.mark.parametrize('rows, message', [
    ([('dist/astronaut_1.png', 'ref/astronaut.png', '1'), ('dist/missing.png', 'ref/astronaut.png', '2')], 'missing'),
    ([('dist/astronaut_1.png', 'ref/astronaut.png', '1'), ('dist/astronaut_1.png', 'ref/astronaut.png', '2')], 'duplicate'),
    ([('dist/astronaut_1.png', 'ref/astronaut.png', 'nan')], 'not finite'),
    ([('dist/astronaut_1.png', 'ref/astronaut.png', '')], 'not a number'),
    ([('dist/astronaut_1.png', 'ref/astronaut.png', 'high')], 'not a number'),
    ([('dist/astronaut_1.png', 'ref/astronaut.png', '1'), ('dist/astronaut_2.png', 'ref/astronaut.png', '2')], 'at least 2 scenes'),
], ids=['missing file', 'duplicate row', 'NaN score', 'empty score', 'non-numeric score', 'one scene'])
def test_prepare_mos_refuses_bad_scores_with_one_line(tmp_path, capsys, rows, message):
    root = _folder(tmp_path, rows)
    assert prepare_mos([str(root), '--out', str(tmp_path / 'meta')]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1 and 'Traceback' not in err
    assert not (tmp_path / 'meta').exists()


def test_folds_group_scenes_and_refuse_impossible_counts(tmp_path):
    root = _folder(tmp_path, _good_rows())
    rows = read_scores(root, root / 'scores.csv')
    _, _, folds = write_mos_meta_info(rows, tmp_path / 'meta', 'two', folds=2)
    assert sorted(s for fold in folds for s in fold) == sorted({r.scene for r in rows}) and len(folds) == 2
    with pytest.raises(MosDataError, match='--folds'):
        write_mos_meta_info(rows, tmp_path / 'meta', 'four', folds=4)


def test_a_split_with_a_scene_on_both_sides_or_an_empty_side_is_refused(tmp_path):
    scenes = ['a', 'a', 'b', 'b']
    check_scene_split(scenes, {'train': [0, 1], 'val': [2, 3]})
    with pytest.raises(MosDataError, match=r"\['b'\] on both sides \(train and val\)"):
        check_scene_split(scenes, {'train': [0, 1, 2], 'val': [3]})
    # the training model checks the split file it is given
    root = _folder(tmp_path, _good_rows())
    meta, split, _ = write_mos_meta_info(read_scores(root, root / 'scores.csv'), tmp_path / 'meta', 'x')
    options = {'meta_info_file': str(meta), 'split_file': str(split), 'split_index': 1}
    _check_split(options)
    leaky = pickle.loads(split.read_bytes())
    leaky[1]['train'].append(leaky[1]['val'][0])
    split.write_bytes(pickle.dumps(leaky))
    with pytest.raises(MosDataError, match='both sides'):
        _check_split(options)
    leaky[1]['val'] = []
    split.write_bytes(pickle.dumps(leaky))
    with pytest.raises(MosDataError, match='val side is empty'):
        _check_split(options)


def test_label_orientation_follows_lower_better_and_mos_normalize():
    assert label_sign({'lower_better': True}) == 1  # DMOS: SPIPS as is
    assert label_sign({'lower_better': False}) == -1  # MOS: higher is better
    assert label_sign({'lower_better': True, 'mos_normalize': True}) == -1  # pyiqa flips it to higher-better
    with pytest.raises(MosDataError, match='lower_better'):
        label_sign({'name': 'x'})


# --- loss and prior -------------------------------------------------------------------------------
def test_pairwise_preference_loss_is_bradley_terry_over_pairs_with_different_scores():
    pred = torch.tensor([0.1, 0.4, 0.3, 0.9])
    target = torch.tensor([1.0, 3.0, 3.0, 2.0])
    expected, count = 0.0, 0
    for i in range(4):
        for j in range(4):
            if target[i] != target[j]:
                p = torch.sigmoid((pred[i] - pred[j]) / 0.2)
                expected += -torch.log(p if target[i] > target[j] else 1 - p)
                count += 1
    assert torch.isclose(pairwise_preference_loss(pred, target, 0.2), expected / count)
    # groups keep only same-group pairs, each in both orders: (0, 1), where 1 is worse, and (2, 3),
    # where 2 is worse
    groups = torch.tensor([0, 0, 1, 1])
    only = [-torch.log(torch.sigmoid((pred[1] - pred[0]) / 0.2)) * 2,
            -torch.log(torch.sigmoid((pred[2] - pred[3]) / 0.2)) * 2]
    assert torch.isclose(pairwise_preference_loss(pred, target, 0.2, groups), sum(only) / 4)
    # ranking like the labels is rewarded
    assert pairwise_preference_loss(target, target, 0.2) < pairwise_preference_loss(-target, target, 0.2)


def test_pairwise_loss_module_fixes_its_scale_from_the_first_batch():
    loss = PairwisePreferenceLoss(temperature=0.5)
    first = torch.tensor([[0.0], [1.0], [2.0]])
    loss(first, torch.tensor([[0.0], [1.0], [2.0]]))
    assert torch.isclose(loss.scale, first.std())
    loss(first * 10, torch.tensor([[0.0], [1.0], [2.0]]))  # scaled predictions: scale kept
    assert torch.isclose(loss.scale, first.std())
    with pytest.raises(ValueError, match='temperature'):
        PairwisePreferenceLoss(temperature=0)


def test_heads_prior_is_zero_at_the_start_and_pulls_back():
    heads = QualityHeads({'traditional': (7,), 'perceptual': (4, 5)})
    prior = HeadsPrior(heads, strength=0.3)
    assert prior(heads).item() == 0
    with torch.no_grad():
        heads.heads['traditional'].convs[0].weight.mul_(2)
        heads.fusion.logits.add_(torch.tensor([1.0, 0.0]))
    value = prior(heads)
    # relative change of the traditional weights: 1 (one of two maps changed), fusion: log-ratio
    lam, lam0 = heads.fusion.weights, prior.start.fusion.weights
    expected = 0.3 * ((1.0 + 0 + 0) / 3 + (lam.log() - lam0.log()).pow(2).mean())
    assert torch.isclose(value, expected)
    value.backward()
    assert (heads.heads['traditional'].convs[0].weight.grad > 0).all()  # gradient points back to the start
    with pytest.raises(ValueError):
        HeadsPrior(heads, strength=-1)


# --- end to end through pyiqa's loop --------------------------------------------------------------
def _kadid_options(tmp_path: Path, lower_better: bool) -> Path:
    """options/train_spips_kadid10k.yml pointed at a KADID-layout fixture, a few quick epochs."""
    data = tmp_path / 'datasets'
    fixture = make_fr_fixture(data, 'kadid10k', n_scenes=3, size=64)
    assert prepare_mos(['--pyiqa', 'kadid10k', '--data-root', str(data), '--folds', '3',
                        '--out', str(data / 'meta_info')]) == 0
    options = yaml.safe_load((REPO / 'options' / 'train_spips_kadid10k.yml').read_text())
    for dataset in options['datasets'].values():
        dataset.update(dataroot_target=fixture['dataroot_target'], num_worker_per_gpu=0,
                       meta_info_file=str(data / 'meta_info' / 'meta_info_kadid10k.csv'),
                       split_file=str(data / 'meta_info' / 'kadid10k_scene_splits.pkl'), lower_better=lower_better)
        dataset.pop('augment', None)
    options['datasets']['train']['batch_size_per_gpu'] = 12
    options['num_gpu'] = 0
    options['train'].update(total_epoch=4)
    options['train']['scheduler'].update(n_epochs=2, n_epochs_decay=2)
    options['val']['val_freq'] = 4
    options['logger'].update(print_freq=1, save_latest_freq=4, save_checkpoint_freq=4)
    path = tmp_path / 'train.yml'
    path.write_text(yaml.safe_dump(options))
    return path


def _train(option_file: Path, cwd: Path) -> str:
    run = subprocess.run([sys.executable, '-m', 'spips_pyiqa.train', '-opt', str(option_file)],
                         cwd=cwd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout + run.stderr


@pytest.mark.slow
def test_mos_training_from_the_option_file_on_a_pyiqa_layout_fixture_and_reload(tmp_path):
    log = _train(_kadid_options(tmp_path, lower_better=False), tmp_path)
    assert 'SPIPSMOSModel' in log and '# srcc' in log and 'anti-correlated' not in log
    checkpoint = tmp_path / 'experiments' / 'SPIPS_alex_kadid10k' / 'models' / 'net_best.pth'
    assert checkpoint.is_file()
    trained = pyiqa.create_metric('spips', device='cpu', pretrained_model_path=str(checkpoint))  # strict load
    start = pyiqa.create_metric('spips-label-free', device='cpu')
    after, before = trained.net.quality.state_dict(), start.net.quality.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and changed <= {'fusion.logits', 'heads.traditional.convs.0.weight'}  # train.learn
    assert all((v >= 0).all() for k, v in after.items() if k.startswith('heads.'))


@pytest.mark.slow
def test_labels_declared_the_wrong_way_round_get_a_loud_warning(tmp_path):
    log = _train(_kadid_options(tmp_path, lower_better=True), tmp_path)  # KADID is MOS: lower_better false
    assert 'anti-correlated' in log and 'sign' in log


@pytest.mark.slow
def test_the_live_dev_option_file_trains_without_validation_and_ends_cleanly(tmp_path):
    """options/train_spips_live_dev.yml has no validation set (pyiqa's loop then ended in an
    AttributeError on best_metric_results); on a small folder + scores CSV it must exit 0."""
    root = _folder(tmp_path, _good_rows())
    assert prepare_mos([str(root), '--name', 'tiny', '--out', str(tmp_path / 'meta')]) == 0
    options = yaml.safe_load((REPO / 'options' / 'train_spips_live_dev.yml').read_text())
    assert 'val' not in options and set(options['datasets']) == {'train'}
    options['datasets']['train'].update(dataroot_target=str(root), num_worker_per_gpu=0, batch_size_per_gpu=3,
                                        meta_info_file=str(tmp_path / 'meta' / 'meta_info_tiny.csv'))
    options['datasets']['train']['augment']['random_crop'] = 64
    options.update(num_gpu=0)
    options['train']['total_epoch'] = 2
    path = tmp_path / 'train.yml'
    path.write_text(yaml.safe_dump(options))
    _train(path, tmp_path)
    assert (tmp_path / 'experiments' / 'SPIPS_alex_live_dev' / 'models' / 'net_latest.pth').is_file()
